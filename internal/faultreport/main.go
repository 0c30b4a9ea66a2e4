// Command faultreport prints the table of `make test-faults`: the faults the
// fault tests injected (their JSON lines, see testenv.ReportFault) and the
// fuzzers' executions (from `go test -fuzz` output files). It exits 1 when
// an event was lost or duplicated, or when no fault was reported.
//
//	go run ./internal/faultreport -faults report.jsonl fuzz-*.log
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"zonestats/internal/testenv"
)

var execs = regexp.MustCompile(`execs: (\d+)`)

func main() {
	faults := flag.String("faults", "", "the fault tests' JSON lines")
	flag.Parse()
	os.Exit(run(*faults, flag.Args()))
}

func run(faultsPath string, fuzzLogs []string) int {
	f, err := os.Open(faultsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultreport:", err)
		return 1
	}
	defer f.Close()
	var rows []testenv.Fault
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r testenv.Fault
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "faultreport:", err)
			return 1
		}
		rows = append(rows, r)
	}
	fmt.Println("| fault | test | injected | events produced | counted | lost | duplicated | dead-lettered |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	var total testenv.Fault
	for _, r := range rows {
		fmt.Printf("| %s | %s | %d | %d | %d | %d | %d | %d |\n", r.Kind, r.Test, r.Injected, r.Produced, r.Counted, r.Lost, r.Duplicated, r.DeadLetter)
		total.Injected += r.Injected
		total.Produced += r.Produced
		total.Counted += r.Counted
		total.Lost += r.Lost
		total.Duplicated += r.Duplicated
		total.DeadLetter += r.DeadLetter
	}
	fmt.Printf("| **all** | | %d | %d | %d | %d | %d | %d |\n", total.Injected, total.Produced, total.Counted, total.Lost, total.Duplicated, total.DeadLetter)
	fmt.Println()
	fmt.Println("| fuzz target | executions |")
	fmt.Println("| --- | ---: |")
	for _, path := range fuzzLogs {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faultreport:", err)
			return 1
		}
		m := execs.FindAllSubmatch(b, -1)
		n := int64(0)
		if len(m) > 0 {
			n, _ = strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
		}
		fmt.Printf("| %s | %d |\n", strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "fuzz-"), ".log"), n)
	}
	switch {
	case len(rows) == 0:
		fmt.Fprintln(os.Stderr, "faultreport: no fault test reported")
		return 1
	case total.Lost != 0 || total.Duplicated != 0:
		fmt.Fprintf(os.Stderr, "faultreport: %d events lost, %d duplicated\n", total.Lost, total.Duplicated)
		return 1
	}
	return 0
}
