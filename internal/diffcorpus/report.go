package diffcorpus

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Tally counts the runs of the corpus (statement x tenant), accepted and
// refused, per category and tenant.
type Tally struct {
	runs map[string]map[string]*[2]int // category -> tenant -> accepted, refused
}

// Add counts one run of s for tenant.
func (t *Tally) Add(tenant string, s Statement) {
	if t.runs == nil {
		t.runs = map[string]map[string]*[2]int{}
	}
	if t.runs[s.Category] == nil {
		t.runs[s.Category] = map[string]*[2]int{}
	}
	c := t.runs[s.Category][tenant]
	if c == nil {
		c = &[2]int{}
		t.runs[s.Category][tenant] = c
	}
	if s.Refused {
		c[1]++
	} else {
		c[0]++
	}
}

// String is the tally as a table: per category its statements, then
// accepted/refused runs per tenant and in total.
func (t *Tally) String() string {
	var tenants []string
	for _, byTenant := range t.runs {
		for tenant := range byTenant {
			if !slices.Contains(tenants, tenant) {
				tenants = append(tenants, tenant)
			}
		}
	}
	slices.Sort(tenants)
	statements := map[string]int{}
	for _, s := range Statements {
		statements[s.Category]++
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "category\tstatements\t")
	for _, tenant := range tenants {
		fmt.Fprintf(tw, "tenant %s acc/ref\t", tenant)
	}
	fmt.Fprintln(tw, "accepted\trefused\t")
	total := map[string]*[2]int{}
	for _, cat := range slices.Sorted(maps.Keys(t.runs)) {
		t.row(tw, cat, statements[cat], tenants, t.runs[cat], total)
	}
	t.row(tw, "total", len(Statements), tenants, total, nil)
	tw.Flush()
	return b.String()
}

// row writes one category's line and adds its counts to total (if any).
func (t *Tally) row(tw *tabwriter.Writer, name string, statements int, tenants []string, counts map[string]*[2]int, total map[string]*[2]int) {
	fmt.Fprintf(tw, "%s\t%d\t", name, statements)
	var sum [2]int
	for _, tenant := range tenants {
		c := counts[tenant]
		if c == nil {
			c = &[2]int{}
		}
		fmt.Fprintf(tw, "%d/%d\t", c[0], c[1])
		sum[0], sum[1] = sum[0]+c[0], sum[1]+c[1]
		if total != nil {
			if total[tenant] == nil {
				total[tenant] = &[2]int{}
			}
			total[tenant][0] += c[0]
			total[tenant][1] += c[1]
		}
	}
	fmt.Fprintf(tw, "%d\t%d\t\n", sum[0], sum[1])
}
