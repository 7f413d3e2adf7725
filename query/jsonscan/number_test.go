package jsonscan_test

import (
	"testing"

	"github.com/provledger/provledger/query/jsonscan"
)

func TestNumberEnd(t *testing.T) {
	tests := []struct {
		in     string
		i      int
		end    int
		wantOK bool
	}{
		{"0", 0, 1, true},
		{"-0", 0, 2, true},
		{"123,", 0, 3, true},
		{"[12.5e-3]", 1, 8, true},
		{"1E+9}", 0, 4, true},
		{"01", 0, 1, true}, // the number is "0"; the caller rejects the "1" after it
		{"", 0, 0, false},
		{"-", 0, 0, false},
		{"-x", 0, 0, false},
		{"1.", 0, 0, false},
		{"1.e5", 0, 0, false},
		{"1e", 0, 0, false},
		{"1e+", 0, 0, false},
		{".5", 0, 0, false},
		{"+1", 0, 0, false},
		{"x", 5, 0, false}, // i past the end
	}
	for _, tt := range tests {
		end, ok := jsonscan.NumberEnd([]byte(tt.in), tt.i)
		if ok != tt.wantOK || ok && end != tt.end {
			t.Errorf("NumberEnd(%q, %d) = %d, %v; want %d, %v", tt.in, tt.i, end, ok, tt.end, tt.wantOK)
		}
	}
}
