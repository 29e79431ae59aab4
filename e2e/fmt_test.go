package e2e_test

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
)

func fmtAny(v any) string {
	if n, ok := v.(pgtype.Numeric); ok {
		f, _ := n.Float64Value()
		return fmt.Sprint(f.Float64)
	}
	return fmt.Sprint(v)
}
