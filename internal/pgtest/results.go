package pgtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ResultTexts renders each result of a statement string as its column names
// and its rows, sorted (row order is not what the differential tests
// compare), so two databases' answers can be compared as strings.
func ResultTexts(rs []*pgconn.Result) []string {
	var out []string
	for _, r := range rs {
		var cols []string
		for _, f := range r.FieldDescriptions {
			cols = append(cols, f.Name)
		}
		var rows []string
		for _, row := range r.Rows {
			var vals []string
			for _, v := range row {
				if v == nil {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, fmt.Sprintf("%q", v))
				}
			}
			rows = append(rows, strings.Join(vals, ","))
		}
		slices.Sort(rows)
		out = append(out, strings.Join(cols, ",")+"\n"+strings.Join(rows, "\n"))
	}
	return out
}
