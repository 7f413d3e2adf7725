// Package jsonscan validates and splits JSON in one pass, giving exactly
// the answers of encoding/json (Valid as json.Valid; Object and Array as
// json.Unmarshal into a map or slice of json.RawMessage) at a fraction of
// their cost, or declining (ok == false) so the caller falls back to
// encoding/json for its error message. Differential fuzz tests hold each
// function to encoding/json's verdict.
//
// The append path validates every "+json" payload with Valid, and the
// lineage index splits every payload it reads with Object and Array.
package jsonscan
