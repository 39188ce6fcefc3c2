package etaxportal

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// The batch of the tax-filing example has exactly 17 filings the bureau must refuse;
// the end-to-end test counts on it.
func TestBatchValidation(t *testing.T) {
	f, err := os.Open("../../../../examples/tax-filing/filings.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	total, refused, unknownCompany := 0, 0, 0
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var in map[string]string
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			t.Fatalf("line %d: %v", total+1, err)
		}
		total++
		c := company(in["company"])
		if c == nil {
			unknownCompany++
			continue
		}
		if errs := Validate(c, in, now); len(errs) > 0 {
			refused++
			continue
		}
		key := in["company"] + in["period"]
		if seen[key] {
			t.Errorf("line %d: %s filed twice", total, key)
		}
		seen[key] = true
	}
	// Rate 0.05 has no option in the form: the robot cannot even select it.
	if total != 200 || refused+unknownCompany != 17 || unknownCompany != 2 {
		t.Fatalf("total %d, refused %d, unknown company %d; want 200, 15, 2", total, refused, unknownCompany)
	}
}

func TestValidate(t *testing.T) {
	c := &Companies[0]
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	good := map[string]string{"period": "2026-10", "rate": "0.13", "sales": "1000", "output_vat": "130.00", "input_vat": "30", "vat_due": "100"}
	if errs := Validate(c, good, now); len(errs) != 0 {
		t.Fatalf("valid declaration refused: %v", errs)
	}
	cases := map[string][2]string{
		"period":     {"2026-11", "has not ended"},
		"rate":       {"0.06", "not registered"},
		"sales":      {"1e3x", "Not a number"},
		"input_vat":  {"-1", "negative"},
		"vat_due":    {"99.99", "output VAT − input VAT = 100.00"},
		"output_vat": {"131", "sales × rate = 130.00"},
	}
	for field, c2 := range cases {
		in := map[string]string{}
		for k, v := range good {
			in[k] = v
		}
		in[field] = c2[0]
		errs := Validate(c, in, now)
		found := false
		for _, m := range errs {
			found = found || contains(m, c2[1])
		}
		if !found {
			t.Errorf("%s=%q: errors %v, want one with %q", field, c2[0], errs, c2[1])
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
