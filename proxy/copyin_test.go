package proxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

func textSpec() *rewrite.CopyIn {
	return &rewrite.CopyIn{Delimiter: '\t', Null: `\N`, Quote: '"', Escape: '"', Fields: 2,
		Checks: []rewrite.CopyCheck{{Field: 0, Column: "tenant_id", Values: []string{"42"}}}, Fill: []string{"x\ty"}}
}

func csvSpec() *rewrite.CopyIn {
	return &rewrite.CopyIn{CSV: true, Delimiter: ',', Quote: '"', Escape: '"', Fields: 2, Header: true,
		Checks: []rewrite.CopyCheck{{Field: 1, Column: "tenant_id", Values: []string{"4,2"}}}, Fill: []string{`a"b`}}
}

// feedAll pushes data through a filter in chunks of size n.
func feedAll(spec *rewrite.CopyIn, data []byte, n int) ([]byte, error) {
	_, out, err := feedFilter(spec, data, n)
	return out, err
}

// feedFilter is feedAll that also returns the filter, for the keys it
// collected.
func feedFilter(spec *rewrite.CopyIn, data []byte, n int) (*copyFilter, []byte, error) {
	f := newCopyFilter(spec)
	var out []byte
	for len(data) > 0 {
		k := min(n, len(data))
		b, err := f.feed(data[:k])
		if err != nil {
			return f, nil, err
		}
		out = append(out, b...)
		data = data[k:]
	}
	b, err := f.finish()
	return f, append(out, b...), err
}

// Rows split anywhere across CopyData messages come out the same, filled.
func TestCopyFilterIsIndependentOfChunking(t *testing.T) {
	for name, c := range map[string]struct {
		spec      *rewrite.CopyIn
		data, out string
	}{
		"text": {textSpec(), "42\ta\\tb\n42\t\\N\r\n42\tlast", "42\ta\\tb\tx\\\ty\n42\t\\N\tx\\\ty\r\n42\tlast\tx\\\ty"},
		"csv":  {csvSpec(), "h1,h2\n\"x\ny\",\"4,2\"\n1,\"4,\"\"2\"\n", "h1,h2\n\"x\ny\",\"4,2\",\"a\"\"b\"\n"},
	} {
		for n := 1; n <= len(c.data); n++ {
			got, err := feedAll(c.spec, []byte(c.data), n)
			if name == "csv" {
				// The last row names tenant 4,"2: refused whatever the chunking.
				if err == nil {
					t.Fatalf("%s/%d: accepted another tenant", name, n)
				}
				continue
			}
			if err != nil || string(got) != c.out {
				t.Fatalf("%s/%d: %q, %v\nwant %q", name, n, got, err, c.out)
			}
		}
	}
}

// FuzzCopyFilter: any input, any chunking: no panic, and the verdict does
// not depend on how the rows were split.
func FuzzCopyFilter(f *testing.F) {
	f.Add([]byte("42\ta\n42\tb\n"), uint8(3), uint8(0))
	f.Add([]byte("h,\"4,2\"\n\"q\"\"\",\"4,2\"\n"), uint8(1), uint8(1))
	f.Add(append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, n, mode uint8) {
		spec := textSpec()
		switch mode % 3 {
		case 1:
			spec = csvSpec()
		case 2:
			spec = &rewrite.CopyIn{Binary: true, Fields: 2,
				Checks: []rewrite.CopyCheck{{Field: 0, Column: "tenant_id", Type: "integer", Values: []string{"42"}}},
				Fill:   []string{"7"}, FillTypes: []string{"uuid"}}
		}
		// Every row's second field is a foreign key to check as well.
		spec.Keys = &rewrite.CopyKeys{Fields: [][]int{{1}}}
		fw, whole, errWhole := feedFilter(spec, data, len(data)+1)
		fs, split, errSplit := feedFilter(spec, data, int(n%16)+1)
		if (errWhole == nil) != (errSplit == nil) || !bytes.Equal(whole, split) {
			t.Fatalf("chunking changed the outcome: %q %v / %q %v", whole, errWhole, split, errSplit)
		}
		if errWhole == nil && !bytes.Equal(bytes.Join(fw.keyRows(), nil), bytes.Join(fs.keyRows(), nil)) {
			t.Fatalf("chunking changed the keys")
		}
	})
}

// The binary format: rows split anywhere come out the same, with the
// tenant appended in its column type's binary form.
func TestBinaryCopyFilter(t *testing.T) {
	spec := &rewrite.CopyIn{Binary: true, Fields: 2,
		Checks:    []rewrite.CopyCheck{{Field: 0, Column: "tenant_id", Type: "integer", Values: []string{"42"}}},
		Fill:      []string{"7"},
		FillTypes: []string{"bigint"}}
	row := func(tenant int32) []byte {
		b := []byte{0, 2, 0, 0, 0, 4}
		b = append(b, byte(tenant>>24), byte(tenant>>16), byte(tenant>>8), byte(tenant))
		return append(b, 0xff, 0xff, 0xff, 0xff) // a NULL second field
	}
	header := append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 0)
	data := append(append(append(append([]byte{}, header...), row(42)...), row(42)...), 0xff, 0xff)
	whole, err := feedAll(spec, data, len(data))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(data); n++ {
		got, err := feedAll(spec, data, n)
		if err != nil || !bytes.Equal(got, whole) {
			t.Fatalf("chunks of %d: %x %v\nwant %x", n, got, err, whole)
		}
	}
	if !bytes.HasSuffix(whole, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff}) || bytes.Count(whole, []byte{0, 3, 0, 0, 0, 4}) != 2 {
		t.Fatalf("filled rows: %x", whole)
	}
	bad := append(append(append([]byte{}, header...), row(43)...), 0xff, 0xff)
	if _, err := feedAll(spec, bad, 5); err == nil || !strings.Contains(err.Error(), `names tenant "43"`) {
		t.Fatalf("another tenant: %v", err)
	}
}
