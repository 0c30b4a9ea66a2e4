/*
 * zonestats.c — the hot aggregates of the zonestats rollups, in C.
 *
 * Maps of integer counts per key are stored as hstore. Building them with
 * one GROUP BY per map in SQL costs a sort or hash of the whole window per
 * map; these aggregates count every key of a group in one pass instead:
 *
 *   zonestats.count_by(key text)             → hstore key → number of rows
 *   zonestats.sum_by(key text, value bigint) → hstore key → sum of value
 *   zonestats.hstore_sum_agg(map hstore)     → hstore key → sum over maps
 *   zonestats.hstore_sum(a hstore, b hstore) → per-key sum of two maps
 *
 * The aggregate state is a small open-addressing hash table of keys in the
 * aggregate's memory context. All three aggregates share it, with combine,
 * serialize and deserialize functions so they run in parallel and combine
 * across Citus shards. Values are 64-bit integers; overflow is an error.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/int.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "extension/hstore/hstore.h"

PG_MODULE_MAGIC;

typedef struct KeyEntry
{
	uint32		hash;
	int32		keylen;			/* -1: empty slot */
	char	   *key;
	int64		value;
} KeyEntry;

typedef struct KeyCounts
{
	MemoryContext ctx;			/* where keys and the table live */
	int			nkeys;
	int			capacity;		/* power of two */
	KeyEntry   *slots;
} KeyCounts;

static KeyCounts *
kc_create(MemoryContext ctx)
{
	KeyCounts  *kc = MemoryContextAlloc(ctx, sizeof(KeyCounts));

	kc->ctx = ctx;
	kc->nkeys = 0;
	kc->capacity = 8;			/* grows; most maps of a zone-minute are small */
	kc->slots = MemoryContextAlloc(ctx, sizeof(KeyEntry) * kc->capacity);
	for (int i = 0; i < kc->capacity; i++)
		kc->slots[i].keylen = -1;
	return kc;
}

static void
kc_grow(KeyCounts *kc)
{
	int			oldcap = kc->capacity;
	KeyEntry   *old = kc->slots;

	kc->capacity = oldcap * 2;
	kc->slots = MemoryContextAlloc(kc->ctx, sizeof(KeyEntry) * kc->capacity);
	for (int i = 0; i < kc->capacity; i++)
		kc->slots[i].keylen = -1;
	for (int i = 0; i < oldcap; i++)
	{
		uint32		pos;

		if (old[i].keylen < 0)
			continue;
		pos = old[i].hash & (kc->capacity - 1);
		while (kc->slots[pos].keylen >= 0)
			pos = (pos + 1) & (kc->capacity - 1);
		kc->slots[pos] = old[i];
	}
	pfree(old);
}

/* Adds value to key's count, creating the key with value if it is new. */
static void
kc_add(KeyCounts *kc, const char *key, int keylen, int64 value)
{
	uint32		hash = hash_bytes((const unsigned char *) key, keylen);
	uint32		pos = hash & (kc->capacity - 1);

	for (;;)
	{
		KeyEntry   *e = &kc->slots[pos];

		if (e->keylen < 0)
			break;
		if (e->hash == hash && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
		{
			if (pg_add_s64_overflow(e->value, value, &e->value))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("zonestats: count of key \"%.*s\" is out of range for bigint", keylen, key)));
			return;
		}
		pos = (pos + 1) & (kc->capacity - 1);
	}
	if ((kc->nkeys + 1) * 10 > kc->capacity * 7)
	{
		kc_grow(kc);
		kc_add(kc, key, keylen, value);
		return;
	}
	if (keylen > HSTORE_MAX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("zonestats: key too long for hstore")));
	kc->slots[pos].hash = hash;
	kc->slots[pos].keylen = keylen;
	kc->slots[pos].key = MemoryContextAlloc(kc->ctx, keylen > 0 ? keylen : 1);
	memcpy(kc->slots[pos].key, key, keylen);
	kc->slots[pos].value = value;
	kc->nkeys++;
}

/* Parses an hstore value as a 64-bit integer. */
static int64
parse_int64(const char *s, int len)
{
	int64		v = 0;
	bool		neg = false;
	int			i = 0;

	if (len > 0 && s[0] == '-')
	{
		neg = true;
		i = 1;
	}
	if (i == len)
		goto bad;
	for (; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		if (pg_mul_s64_overflow(v, 10, &v) || pg_sub_s64_overflow(v, s[i] - '0', &v))
			goto bad;
	}
	if (!neg)
	{
		if (v == PG_INT64_MIN)
			goto bad;
		v = -v;
	}
	return v;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("zonestats: hstore value \"%.*s\" is not a bigint", len, s)));
	return 0;					/* not reached */
}

static HStore *
get_hstore(Datum d)
{
	HStore	   *hs = (HStore *) PG_DETOAST_DATUM(d);

	if (HS_COUNT(hs) > 0 && (hs->size_ & HS_FLAG_NEWVERSION) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("zonestats: hstore value in the pre-9.0 format"),
				 errhint("Rewrite it with UPDATE … SET col = col || ''.")));
	return hs;
}

static void
kc_add_hstore(KeyCounts *kc, HStore *hs)
{
	HEntry	   *entries = ARRPTR(hs);
	char	   *base = STRPTR(hs);
	int			n = HS_COUNT(hs);

	for (int i = 0; i < n; i++)
	{
		if (HSTORE_VALISNULL(entries, i))
			continue;
		kc_add(kc, HSTORE_KEY(entries, base, i), HSTORE_KEYLEN(entries, i),
			   parse_int64(HSTORE_VAL(entries, base, i), HSTORE_VALLEN(entries, i)));
	}
}

/* hstore's key order: shorter keys first, then bytewise. */
static int
key_cmp(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

static int
entry_cmp(const void *a, const void *b)
{
	const KeyEntry *x = *(KeyEntry *const *) a;
	const KeyEntry *y = *(KeyEntry *const *) b;

	return key_cmp(x->key, x->keylen, y->key, y->keylen);
}

/* Builds an hstore of (key, decimal value) pairs already in hstore order. */
typedef struct PairOut
{
	const char *key;
	int			keylen;
	int64		value;
} PairOut;

static HStore *
build_hstore(PairOut *pairs, int n)
{
	char		(*digits)[MAXINT8LEN + 1] = n > 0 ? palloc(n * (MAXINT8LEN + 1)) : NULL;
	int		   *dlen = n > 0 ? palloc(n * sizeof(int)) : NULL;
	size_t		buflen = 0;
	HStore	   *out;
	HEntry	   *entries;
	char	   *base,
			   *ptr;

	for (int i = 0; i < n; i++)
	{
		dlen[i] = pg_lltoa(pairs[i].value, digits[i]);
		buflen += pairs[i].keylen + dlen[i];
	}
	if (buflen > HENTRY_POSMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("zonestats: hstore too large")));
	out = palloc(CALCDATASIZE(n, buflen));
	HS_SETCOUNT(out, n);
	entries = ARRPTR(out);
	base = ptr = STRPTR(out);
	for (int i = 0; i < n; i++)
	{
		memcpy(ptr, pairs[i].key, pairs[i].keylen);
		ptr += pairs[i].keylen;
		entries++->entry = (ptr - base) & HENTRY_POSMASK;
		memcpy(ptr, digits[i], dlen[i]);
		ptr += dlen[i];
		entries++->entry = (ptr - base) & HENTRY_POSMASK;
	}
	HS_FINALIZE(out, n, base, ptr);
	return out;
}

static HStore *
kc_to_hstore(KeyCounts *kc)
{
	KeyEntry  **sorted;
	PairOut    *pairs;
	int			n = 0;

	if (kc == NULL || kc->nkeys == 0)
		return build_hstore(NULL, 0);
	sorted = palloc(sizeof(KeyEntry *) * kc->nkeys);
	for (int i = 0; i < kc->capacity; i++)
		if (kc->slots[i].keylen >= 0)
			sorted[n++] = &kc->slots[i];
	qsort(sorted, n, sizeof(KeyEntry *), entry_cmp);
	pairs = palloc(sizeof(PairOut) * n);
	for (int i = 0; i < n; i++)
	{
		pairs[i].key = sorted[i]->key;
		pairs[i].keylen = sorted[i]->keylen;
		pairs[i].value = sorted[i]->value;
	}
	return build_hstore(pairs, n);
}

static KeyCounts *
state_arg(FunctionCallInfo fcinfo, MemoryContext *aggctx)
{
	if (!AggCheckCallContext(fcinfo, aggctx))
		elog(ERROR, "zonestats: aggregate function called in non-aggregate context");
	if (PG_ARGISNULL(0))
		return kc_create(*aggctx);
	return (KeyCounts *) PG_GETARG_POINTER(0);
}

PG_FUNCTION_INFO_V1(zs_count_by_trans);
Datum
zs_count_by_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	KeyCounts  *kc = state_arg(fcinfo, &aggctx);

	if (!PG_ARGISNULL(1))
	{
		text	   *key = PG_GETARG_TEXT_PP(1);

		kc_add(kc, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), 1);
	}
	PG_RETURN_POINTER(kc);
}

PG_FUNCTION_INFO_V1(zs_sum_by_trans);
Datum
zs_sum_by_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	KeyCounts  *kc = state_arg(fcinfo, &aggctx);

	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
	{
		text	   *key = PG_GETARG_TEXT_PP(1);

		kc_add(kc, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), PG_GETARG_INT64(2));
	}
	PG_RETURN_POINTER(kc);
}

PG_FUNCTION_INFO_V1(zs_hstore_sum_trans);
Datum
zs_hstore_sum_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	KeyCounts  *kc = state_arg(fcinfo, &aggctx);

	if (!PG_ARGISNULL(1))
		kc_add_hstore(kc, get_hstore(PG_GETARG_DATUM(1)));
	PG_RETURN_POINTER(kc);
}

PG_FUNCTION_INFO_V1(zs_keys_final);
Datum
zs_keys_final(PG_FUNCTION_ARGS)
{
	KeyCounts  *kc = PG_ARGISNULL(0) ? NULL : (KeyCounts *) PG_GETARG_POINTER(0);

	PG_RETURN_POINTER(kc_to_hstore(kc));
}

PG_FUNCTION_INFO_V1(zs_keys_combine);
Datum
zs_keys_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	KeyCounts  *a,
			   *b;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "zonestats: aggregate function called in non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	b = (KeyCounts *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? kc_create(aggctx) : (KeyCounts *) PG_GETARG_POINTER(0);
	for (int i = 0; i < b->capacity; i++)
		if (b->slots[i].keylen >= 0)
			kc_add(a, b->slots[i].key, b->slots[i].keylen, b->slots[i].value);
	PG_RETURN_POINTER(a);
}

/* Serialized state: int32 count, then per key int32 length, bytes, int64 value. */
PG_FUNCTION_INFO_V1(zs_keys_serialize);
Datum
zs_keys_serialize(PG_FUNCTION_ARGS)
{
	KeyCounts  *kc = (KeyCounts *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, kc->nkeys);
	for (int i = 0; i < kc->capacity; i++)
	{
		if (kc->slots[i].keylen < 0)
			continue;
		pq_sendint32(&buf, kc->slots[i].keylen);
		pq_sendbytes(&buf, kc->slots[i].key, kc->slots[i].keylen);
		pq_sendint64(&buf, kc->slots[i].value);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(zs_keys_deserialize);
Datum
zs_keys_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	KeyCounts  *kc;
	int			n;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "zonestats: aggregate function called in non-aggregate context");
	kc = kc_create(aggctx);
	buf.data = VARDATA_ANY(b);
	buf.len = buf.maxlen = VARSIZE_ANY_EXHDR(b);
	buf.cursor = 0;
	n = pq_getmsgint(&buf, 4);
	for (int i = 0; i < n; i++)
	{
		int			len = pq_getmsgint(&buf, 4);
		const char *key = pq_getmsgbytes(&buf, len);

		kc_add(kc, key, len, pq_getmsgint64(&buf));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(kc);
}

/* hstore_sum(a, b): a merge of two maps sorted in hstore order. NULL is empty. */
PG_FUNCTION_INFO_V1(zs_hstore_sum);
Datum
zs_hstore_sum(PG_FUNCTION_ARGS)
{
	HStore	   *a,
			   *b;
	HEntry	   *ae,
			   *be;
	char	   *as,
			   *bs;
	int			an,
				bn,
				i = 0,
				j = 0,
				n = 0;
	PairOut    *pairs;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_POINTER(build_hstore(NULL, 0));
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(PG_GETARG_DATUM(1));
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	a = get_hstore(PG_GETARG_DATUM(0));
	b = get_hstore(PG_GETARG_DATUM(1));
	an = HS_COUNT(a);
	bn = HS_COUNT(b);
	if (bn == 0)
		PG_RETURN_POINTER(a);
	if (an == 0)
		PG_RETURN_POINTER(b);
	ae = ARRPTR(a);
	be = ARRPTR(b);
	as = STRPTR(a);
	bs = STRPTR(b);
	pairs = palloc(sizeof(PairOut) * (an + bn));
	while (i < an || j < bn)
	{
		int			c;

		if (i == an)
			c = 1;
		else if (j == bn)
			c = -1;
		else
			c = key_cmp(HSTORE_KEY(ae, as, i), HSTORE_KEYLEN(ae, i), HSTORE_KEY(be, bs, j), HSTORE_KEYLEN(be, j));
		if (c <= 0)
		{
			pairs[n].key = HSTORE_KEY(ae, as, i);
			pairs[n].keylen = HSTORE_KEYLEN(ae, i);
			pairs[n].value = HSTORE_VALISNULL(ae, i) ? 0 : parse_int64(HSTORE_VAL(ae, as, i), HSTORE_VALLEN(ae, i));
			i++;
			if (c == 0)
			{
				int64		v = HSTORE_VALISNULL(be, j) ? 0 : parse_int64(HSTORE_VAL(be, bs, j), HSTORE_VALLEN(be, j));

				if (pg_add_s64_overflow(pairs[n].value, v, &pairs[n].value))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("zonestats: count of key \"%.*s\" is out of range for bigint",
									pairs[n].keylen, pairs[n].key)));
				j++;
			}
		}
		else
		{
			pairs[n].key = HSTORE_KEY(be, bs, j);
			pairs[n].keylen = HSTORE_KEYLEN(be, j);
			pairs[n].value = HSTORE_VALISNULL(be, j) ? 0 : parse_int64(HSTORE_VAL(be, bs, j), HSTORE_VALLEN(be, j));
			j++;
		}
		n++;
	}
	PG_RETURN_POINTER(build_hstore(pairs, n));
}

