// strata-helm-render renders a Helm 3 chart offline with Go's text/template and the sprig function
// library (the engine Helm is built on), for CI machines that have no helm binary. It implements the
// subset of Helm that the strata chart uses: .Values (chart defaults deep-merged with -f files, a
// null removing a default, numbers as float64 as in Helm), .Release, .Chart, .Capabilities (fixed
// minimal), .Template, .Files.Get, and the functions include, tpl, required, fail, toYaml, fromYaml,
// toJson, fromJson, lookup (always empty) plus sprig minus env/expandenv, as Helm does.
// Unknown keys in templates render as empty (missingkey=zero, "<no value>" removed, as Helm does).
//
// Usage: strata-helm-render -chart DIR [-f values.yaml ...] [-name RELEASE] [-namespace NS]
//
//	[-values-out merged.json] [-notes-out NOTES] > manifests.yaml
//
// Exit 1 with one line on stderr on any parse or execution error (a failing `required`/`fail`
// included), exactly where `helm template` would fail.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// Files is .Files: the chart's non-template files by relative path.
type Files map[string][]byte

// Get returns a file's contents, or "" when the chart has no such file (as Helm does).
func (f Files) Get(name string) string { return string(f[name]) }

// APIVersions is .Capabilities.APIVersions.
type APIVersions []string

// Has reports whether an API group/version (or group/version/Kind) is listed.
func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "strata-helm-render: "+format+"\n", args...)
	os.Exit(1)
}

// toJSONTypes converts YAML-decoded data to what Helm's sigs.k8s.io/yaml yields: maps with string
// keys, float64 numbers.
func toJSONTypes(v interface{}) (interface{}, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(b, &out)
	return out, err
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	conv, err := toJSONTypes(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m, ok := conv.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a map", path)
	}
	return m, nil
}

// mergeValues deep-merges src over dst (Helm's coalesce): maps merge, other values replace, and an
// explicit null deletes the key.
func mergeValues(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = mergeValues(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// toYAML mirrors Helm's toYaml: JSON first (so numbers print as integers where they are), then YAML,
// two-space indent, without the trailing newline.
func toYAML(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return ""
	}
	blockStyle(&node)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// blockStyle clears the flow/quoting styles the JSON text left on the nodes, so the YAML comes out in
// block style with quotes only where a string needs them (as Helm's toYaml prints).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	var raw interface{}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		m["Error"] = err.Error()
		return m
	}
	conv, err := toJSONTypes(raw)
	if err != nil {
		m["Error"] = err.Error()
		return m
	}
	if cm, ok := conv.(map[string]interface{}); ok {
		return cm
	}
	return m
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func isEmpty(v interface{}) bool {
	if v == nil {
		return true
	}
	if s, ok := v.(string); ok {
		return s == ""
	}
	return false
}

func main() {
	chartDir := flag.String("chart", "", "chart directory (holds Chart.yaml)")
	name := flag.String("name", "strata", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	valuesOut := flag.String("values-out", "", "write the merged values here as JSON")
	notesOut := flag.String("notes-out", "", "write the rendered NOTES.txt here")
	kubeVersion := flag.String("kube-version", "v1.29.0", "value of .Capabilities.KubeVersion.Version")
	var files valueFiles
	flag.Var(&files, "f", "values file merged over the chart's values.yaml (repeatable, later wins)")
	flag.Parse()
	if *chartDir == "" {
		die("-chart is required")
	}

	chartMeta, err := readYAMLMap(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		die("%v", err)
	}
	// .Chart uses Helm's capitalized field names.
	chart := map[string]interface{}{}
	for k, v := range chartMeta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	chartName, _ := chart["Name"].(string)
	if chartName == "" {
		die("Chart.yaml has no name")
	}

	values, err := readYAMLMap(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		die("%v", err)
	}
	for _, f := range files {
		over, err := readYAMLMap(f)
		if err != nil {
			die("%v", err)
		}
		values = mergeValues(values, over)
	}
	if *valuesOut != "" {
		b, _ := json.MarshalIndent(values, "", "  ")
		if err := os.WriteFile(*valuesOut, b, 0o644); err != nil {
			die("%v", err)
		}
	}

	// Chart files (for .Files.Get) and templates.
	chartFiles := Files{}
	var templateNames []string
	tmplSources := map[string]string{}
	err = filepath.Walk(*chartDir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(*chartDir, path)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			full := chartName + "/" + rel
			templateNames = append(templateNames, full)
			tmplSources[full] = string(b)
		} else {
			chartFiles[rel] = b
		}
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	sort.Strings(templateNames)

	root := template.New("gotpl").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(n string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", errors.New("include: recursion too deep")
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if isEmpty(v) {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromJson"] = fromJSON
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{}
	}
	root.Funcs(funcs)
	for _, n := range templateNames {
		if _, err := root.New(n).Parse(tmplSources[n]); err != nil {
			die("parse %v", err)
		}
	}

	kv := strings.TrimPrefix(*kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		die("bad -kube-version %q", *kubeVersion)
	}
	capabilities := map[string]interface{}{
		"KubeVersion": map[string]interface{}{
			"Version": "v" + kv, "GitVersion": "v" + kv, "Major": parts[0], "Minor": parts[1],
		},
		"APIVersions": APIVersions{"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"},
	}
	release := map[string]interface{}{
		"Name": *name, "Namespace": *namespace, "Service": "Helm", "IsInstall": true,
		"IsUpgrade": false, "Revision": 1,
	}

	var out bytes.Buffer
	for _, n := range templateNames {
		base := filepath.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		top := map[string]interface{}{
			"Values": values, "Release": release, "Chart": chart, "Capabilities": capabilities,
			"Files":    chartFiles,
			"Template": map[string]interface{}{"Name": n, "BasePath": chartName + "/templates"},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, top); err != nil {
			die("render %v", err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			if *notesOut != "" {
				if err := os.WriteFile(*notesOut, []byte(text), 0o644); err != nil {
					die("%v", err)
				}
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(text))
	}
	os.Stdout.Write(out.Bytes())
}
