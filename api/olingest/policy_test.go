package olingest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/provledger/provledger/api/auth"
	"github.com/provledger/provledger/api/olingest"
	"github.com/provledger/provledger/crypto/policy"
	"github.com/provledger/provledger/query/payload"
)

// TestPolicyIdentities: an ingest token that the policy in force names
// gets the identity's grant — role, the namespace of its entries (its
// name), event types — narrower or wider than its tokens file line; a
// token the policy does not name keeps its line; a policy change counts
// from the next request; a refused event is not appended.
func TestPolicyIdentities(t *testing.T) {
	const dbtToken = "s3cr3t-dbt-token"
	var cur atomic.Pointer[policy.State]
	e := start(t, payload.Limits{}, func(c *olingest.Config) {
		c.Tokens = tokens(t, append(tokensFile(), "dbt "+auth.HashToken(dbtToken)+" types="+payload.TypeOpenLineageDataset+"\n"...))
		c.Policy = cur.Load
	})
	dsEvent := readFile(t, "../../query/payload/testdata/static/dataset-event.json")
	n := 0
	runEvent := func() []byte { // a new event each time: no duplicates
		n++
		return event(func(m map[string]any) { m["eventTime"] = fmt.Sprintf("2026-11-26T10:%02d:00Z", n) })
	}
	// apply makes doc the policy in force, as policy entry index.
	apply := func(index uint64, doc string) {
		t.Helper()
		if doc == "" {
			cur.Store(nil)
			return
		}
		p, err := policy.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(cur.Load().Apply(index, p))
	}
	const ident = "policyVersion: 1\nreplace: true\nidentities:\n"
	for _, st := range []struct {
		name   string
		policy string // "" no policy; else applied (as entry 7) before the request
		token  string
		body   []byte
		code   int
		want   string
	}{
		{"no policy: dbt's types= refuses run events", "", dbtToken, runEvent(), http.StatusForbidden, "its types= in the tokens file"},
		{"no policy: airflow-prod by its line", "", airflowToken, runEvent(), http.StatusOK, ""},
		{"policy widens dbt's types", ident + "  - {name: dbt, roles: [appender], namespaces: [dbt]}\n", dbtToken, runEvent(), http.StatusOK, ""},
		{"reader only", ident + "  - {name: airflow-prod, roles: [reader]}\n", airflowToken, runEvent(), http.StatusForbidden,
			`policy in force (policy entry 7) gives identity "airflow-prod" the roles reader, not appender`},
		{"no role", ident + "  - {name: airflow-prod}\n", airflowToken, runEvent(), http.StatusForbidden, `gives identity "airflow-prod" no role, not appender`},
		{"namespace not granted", ident + "  - {name: airflow-prod, roles: [appender], namespaces: [team-a, team-a/*]}\n", airflowToken, runEvent(), http.StatusForbidden,
			`they go to namespace "airflow-prod" (the token's name), and the policy in force (policy entry 7) grants identity "airflow-prod" namespaces team-a, team-a/* only`},
		{"namespace by pattern", ident + "  - {name: airflow-prod, roles: [appender], namespaces: [airflow-*]}\n", airflowToken, runEvent(), http.StatusOK, ""},
		{"type not granted", ident + "  - {name: airflow-prod, roles: [appender], payloadTypes: [" + payload.TypeOpenLineageDataset + "]}\n", airflowToken, runEvent(), http.StatusForbidden,
			`policy in force (policy entry 7) grants identity "airflow-prod" payload types ` + payload.TypeOpenLineageDataset + " only"},
		{"type granted", "", airflowToken, dsEvent, http.StatusOK, ""},
		{"not named: tokens file grant", "", "s3cr3t-spark-token", runEvent(), http.StatusOK, ""},
		{"admin: any namespace and type", ident + "  - {name: airflow-prod, roles: [admin], namespaces: [team-a], payloadTypes: [x]}\n", airflowToken, runEvent(), http.StatusOK, ""},
		{"a policy without identities: tokens file again", "policyVersion: 1\nreplace: true\n", dbtToken, runEvent(), http.StatusForbidden, "its types= in the tokens file"},
	} {
		if st.policy != "" || strings.HasPrefix(st.name, "no policy") {
			apply(7, st.policy)
		}
		size := e.log.Latest().Size
		r := e.post(t, olingest.PathEvent, st.token, st.body)
		var body struct{ Error string }
		if err := json.Unmarshal(r.body, &body); err != nil || r.code != st.code || !strings.Contains(body.Error, st.want) {
			t.Errorf("%s: %d %s; want %d mentioning %q", st.name, r.code, r.body, st.code, st.want)
		}
		if grew := e.log.Latest().Size != size; grew != (st.code == http.StatusOK) {
			t.Errorf("%s: the log grew: %v", st.name, grew)
		}
	}

	// A batch is judged event by event under one policy: the type the
	// identity is not granted fails, the other commits.
	apply(9, ident+"  - {name: airflow-prod, roles: [appender], payloadTypes: [\"application/vnd.openlineage.dataset-*\"]}\n")
	batch, err := json.Marshal([]json.RawMessage{runEvent(), dsEvent})
	if err != nil {
		t.Fatal(err)
	}
	r := e.post(t, olingest.PathBatch, airflowToken, batch)
	var br olingest.BatchResponse
	if err := json.Unmarshal(r.body, &br); err != nil || r.code != http.StatusOK || br.Status != "partial_success" || len(br.FailedEvents) != 1 ||
		br.FailedEvents[0].Index != 0 || !strings.Contains(br.FailedEvents[0].Reason, "(policy entry 9) grants identity") {
		t.Errorf("batch: %d %s", r.code, r.body)
	}
}
