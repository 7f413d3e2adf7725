package payload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// in-toto and SLSA identifiers.
const (
	StatementV1   = "https://in-toto.io/Statement/v1"
	StatementV01  = "https://in-toto.io/Statement/v0.1"
	SLSAProvV1    = "https://slsa.dev/provenance/v1"
	SLSAProvV02   = "https://slsa.dev/provenance/v0.2"
	maxDigestAlgs = 16
)

// ArtifactNamespace is the dataset namespace of an in-toto subject or
// dependency whose name is not a URI (e.g. "app-linux-amd64"). A name
// like s3://bucket/path becomes namespace s3://bucket, name path, as
// OpenLineage names datasets.
const ArtifactNamespace = "artifact"

// digestOrder ranks digest algorithms when a descriptor has several: the
// dataset version is "<alg>:<hex>" of the first one present.
var digestOrder = []string{"sha256", "sha512", "sha384", "gitCommit", "sha1"}

// ParseStatement parses an in-toto Statement (v1, or v0.1) whose predicate
// is SLSA provenance v1 (or v0.2) into a run event of source in-toto:
//
//   - the builder id is the job namespace and the buildType the job name;
//   - runDetails.metadata.invocationId is the run id (without one, the
//     run id is "sha256:<hex>" of the statement);
//   - finishedOn (else startedOn) is the event time; the event is COMPLETE;
//   - every subject is an output dataset whose version is its digest;
//   - every resolvedDependency (v0.2: material) is an input, versioned by
//     its digest; the first one with a gitCommit digest is the job's source
//     code location and version.
//
// A statement with another predicate type returns an error wrapping
// ErrNotLineage as soon as its _type and predicateType are read: nothing of
// it is indexed, so its subjects and predicate are not parsed.
func ParseStatement(b []byte, lim Limits) (*RunEvent, error) {
	lim = lim.withDefaults()
	root, err := parseObject("", b)
	if err != nil {
		return nil, rootErr("an in-toto Statement", err)
	}
	typ, err := root.str("_type", true, 256)
	if err != nil {
		return nil, err
	}
	if typ != StatementV1 && typ != StatementV01 {
		return nil, fieldErr("_type", "%q is not an in-toto Statement type; use %s", truncate(typ), StatementV1)
	}
	pt, err := root.str("predicateType", true, 256)
	if err != nil {
		return nil, err
	}
	if pt != SLSAProvV1 && pt != SLSAProvV02 {
		// Nothing of it is indexed: its subjects and predicate are not
		// parsed (the payload as a whole was validated as JSON).
		return nil, &notLineage{msg: "in-toto predicate type " + truncate(pt) + " carries no provenance; the graph indexes " + SLSAProvV1 + " (and v0.2)"}
	}
	subjects, err := root.array("subject", lim.MaxDatasets)
	if err != nil {
		return nil, err
	}
	if len(subjects) == 0 {
		return nil, fieldErr("subject", "is required: list at least one artifact with its digest")
	}
	e := &RunEvent{Source: SourceInToto, EventType: Complete}
	for i, raw := range subjects {
		d, err := descriptor(index("subject", i), raw, lim, true)
		if err != nil {
			return nil, err
		}
		e.Outputs = append(e.Outputs, d.Dataset)
	}
	pred, _, err := root.object("predicate", true)
	if err != nil {
		return nil, err
	}
	var deps []json.RawMessage
	var depsPath string
	switch pt {
	case SLSAProvV1:
		bd, _, err := pred.object("buildDefinition", true)
		if err != nil {
			return nil, err
		}
		if e.Job.Name, err = bd.str("buildType", true, lim.MaxNameLen); err != nil {
			return nil, err
		}
		rd, _, err := pred.object("runDetails", true)
		if err != nil {
			return nil, err
		}
		builder, _, err := rd.object("builder", true)
		if err != nil {
			return nil, err
		}
		if e.Job.Namespace, err = builder.str("id", true, lim.MaxNameLen); err != nil {
			return nil, err
		}
		if md, ok, err := rd.object("metadata", false); err != nil {
			return nil, err
		} else if ok {
			if e.Run.ID, err = md.str("invocationId", false, lim.MaxNameLen); err != nil {
				return nil, err
			}
			if e.EventTime, err = eventTime(md, "startedOn", "finishedOn"); err != nil {
				return nil, err
			}
		}
		depsPath = join(bd.path, "resolvedDependencies")
		if deps, err = bd.array("resolvedDependencies", lim.MaxDatasets); err != nil {
			return nil, err
		}
	case SLSAProvV02:
		builder, _, err := pred.object("builder", true)
		if err != nil {
			return nil, err
		}
		if e.Job.Namespace, err = builder.str("id", true, lim.MaxNameLen); err != nil {
			return nil, err
		}
		if e.Job.Name, err = pred.str("buildType", true, lim.MaxNameLen); err != nil {
			return nil, err
		}
		if md, ok, err := pred.object("metadata", false); err != nil {
			return nil, err
		} else if ok {
			if e.Run.ID, err = md.str("buildInvocationId", false, lim.MaxNameLen); err != nil {
				return nil, err
			}
			if e.EventTime, err = eventTime(md, "buildStartedOn", "buildFinishedOn"); err != nil {
				return nil, err
			}
		}
		depsPath = join(pred.path, "materials")
		if deps, err = pred.array("materials", lim.MaxDatasets); err != nil {
			return nil, err
		}
	}
	if len(deps)+len(subjects) > lim.MaxDatasets {
		return nil, fieldErr(depsPath, "%d subjects and %d dependencies; the limit is %d datasets per statement", len(subjects), len(deps), lim.MaxDatasets)
	}
	for i, raw := range deps {
		d, err := descriptor(index(depsPath, i), raw, lim, false)
		if err != nil {
			return nil, err
		}
		e.Inputs = append(e.Inputs, d.Dataset)
		if e.Job.Source == nil && d.gitCommit != "" {
			e.Job.Source = &SourceCode{Type: "git", RepoURL: d.uri, Version: d.gitCommit}
		}
	}
	if e.Run.ID == "" {
		sum := sha256.Sum256(b)
		e.Run.ID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return e, nil
}

func eventTime(md obj, start, finish string) (time.Time, error) {
	f, err := md.timestamp(finish, false)
	if err != nil || !f.IsZero() {
		return f, err
	}
	return md.timestamp(start, false)
}

type resource struct {
	Dataset
	uri       string
	gitCommit string
}

// descriptor parses an in-toto ResourceDescriptor (v0.1 subjects and
// materials are a subset of it).
func descriptor(path string, raw json.RawMessage, lim Limits, subject bool) (resource, error) {
	var r resource
	o, err := parseObject(path, raw)
	if err != nil {
		return r, err
	}
	name, err := o.str("name", false, lim.MaxNameLen)
	if err != nil {
		return r, err
	}
	if r.uri, err = o.str("uri", false, lim.MaxNameLen); err != nil {
		return r, err
	}
	dg, hasDigest, err := o.object("digest", subject)
	if err != nil {
		return r, err
	}
	if hasDigest {
		algs := dg.keys()
		if len(algs) == 0 && subject {
			return r, fieldErr(dg.path, "is empty: give at least one digest, e.g. {\"sha256\": \"<hex>\"}")
		}
		if len(algs) > maxDigestAlgs {
			return r, fieldErr(dg.path, "has %d algorithms; the limit is %d", len(algs), maxDigestAlgs)
		}
		vals := map[string]string{}
		for _, alg := range algs {
			v, err := dg.str(alg, true, 1024)
			if err != nil {
				return r, err
			}
			if _, err := hex.DecodeString(v); err != nil {
				return r, fieldErr(join(dg.path, alg), "%q is not hex", truncate(v))
			}
			vals[alg] = strings.ToLower(v)
		}
		r.gitCommit = vals["gitCommit"]
		for _, alg := range digestOrder {
			if v, ok := vals[alg]; ok {
				r.Version = alg + ":" + v
				break
			}
		}
		if r.Version == "" && len(algs) > 0 {
			r.Version = algs[0] + ":" + vals[algs[0]]
		}
	}
	if subject && name == "" {
		return r, fieldErr(join(path, "name"), "is required")
	}
	id := name
	if !subject && r.uri != "" {
		id = r.uri
	}
	switch {
	case id == "" && r.Version != "":
		r.Namespace, r.Name = ArtifactNamespace, r.Version
	case id == "":
		return r, fieldErr(path, "names no artifact: set uri, name or digest")
	default:
		if ns, n, ok := splitURI(id); ok {
			r.Namespace, r.Name = ns, n
		} else {
			r.Namespace, r.Name = ArtifactNamespace, id
		}
	}
	return r, nil
}
