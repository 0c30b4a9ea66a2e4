-- Dead letters are bounded: expire() deletes those older than
-- dead_letter_retention and reports how many arrived in the last 24 hours.

ALTER TABLE zonestats.settings ADD COLUMN dead_letter_retention interval DEFAULT '7 days'
    CHECK (dead_letter_retention >= '1 hour');
COMMENT ON COLUMN zonestats.settings.dead_letter_retention IS
    'dead letters received longer ago than this are deleted by expire(); NULL keeps them';

{{ template "sql/functions/expire_dead_letters.sql" . }}
