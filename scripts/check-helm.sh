#!/usr/bin/env bash
# CI check of the Helm chart helm/strata, offline and without a helm binary (Debian 12 packages
# none): builds helm/tools/render (Go text/template + sprig from Debian's Go sources, no network),
# renders the chart for the default values, values-production.yaml, the positive fixtures and the
# shipped cost model, and validates each rendering with helm/tools/validate.mjs (values against
# values.schema.json, every manifest against the Kubernetes API schemas, the dashboard's metric
# names against README.md). Then proves the check can fail: every negative fixture under
# helm/tools/fixtures/bad-* must be rejected, with the message its "expect:" line names.
# Needs go, node and npm (scripts/install-deps.sh installs them); installs nothing itself beyond
# `npm ci` into helm/tools/node_modules. Exit 0 when every case behaves, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHART=helm/strata
TOOLS=helm/tools

for tool in go node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-helm: $tool not found; run scripts/install-deps.sh" >&2
    exit 1
  fi
done
if [ ! -d /usr/share/gocode/src/github.com/Masterminds/sprig ]; then
  echo "check-helm: golang-github-masterminds-sprig-dev is missing; run scripts/install-deps.sh" >&2
  exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== check-helm: build the renderer (Go $(go env GOVERSION), sprig from /usr/share/gocode, GOPROXY=off)"
# GOPATH mode over Debian's sources. sprig v3 and semver v3 are imported by their /v3 module paths,
# which Debian installs without the /v3 directory: two links in a private GOPATH supply it.
mkdir -p "$WORK/gopath/src/github.com/Masterminds/sprig" "$WORK/gopath/src/github.com/Masterminds/semver"
ln -s /usr/share/gocode/src/github.com/Masterminds/sprig "$WORK/gopath/src/github.com/Masterminds/sprig/v3"
ln -s /usr/share/gocode/src/github.com/Masterminds/semver "$WORK/gopath/src/github.com/Masterminds/semver/v3"
(cd "$TOOLS/render" && GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$WORK/gopath:/usr/share/gocode" \
  go build -o "$WORK/strata-helm-render" .)
RENDER="$WORK/strata-helm-render"

echo "== check-helm: npm ci in $TOOLS (versions pinned by package-lock.json)"
(cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

passed=0
failed=0

# render_and_validate LABEL CHART_DIR [VALUES_FILE...]: 0 when the rendering and every check pass;
# the problems go to $WORK/last.err, the summary line to stdout.
render_and_validate() {
  local label=$1 chart=$2
  shift 2
  local fargs=() f
  for f in "$@"; do fargs+=(-f "$f"); done
  rm -f "$WORK/values.json" "$WORK/out.yaml" "$WORK/notes.txt"
  : >"$WORK/last.err"
  local rc=0
  "$RENDER" -chart "$chart" -name strata -namespace strata "${fargs[@]}" \
    -values-out "$WORK/values.json" -notes-out "$WORK/notes.txt" >"$WORK/out.yaml" 2>>"$WORK/last.err" || rc=1
  if [ ! -f "$WORK/values.json" ]; then return 1; fi
  local margs=()
  if [ "$rc" -eq 0 ]; then margs=(--manifests "$WORK/out.yaml" --readme README.md); fi
  node "$TOOLS/validate.mjs" --schema "$chart/values.schema.json" --values "$WORK/values.json" \
    "${margs[@]}" --label "$label" 2>>"$WORK/last.err" || rc=1
  if [ "$rc" -eq 0 ] && [ ! -s "$WORK/notes.txt" ]; then
    echo "  $label: NOTES.txt rendered empty" >>"$WORK/last.err"
    rc=1
  fi
  return $rc
}

expect_pass() {
  local label=$1
  shift
  if render_and_validate "$label" "$@"; then
    passed=$((passed + 1))
  else
    echo "FAIL $label: expected to pass" >&2
    sed 's/^/    /' "$WORK/last.err" >&2
    failed=$((failed + 1))
  fi
}

# expect_reject LABEL FIXTURE CHART_DIR [VALUES_FILE...]: the fixture's first "expect: TEXT" line
# names a message the rejection must contain, so a fixture cannot pass by failing for another
# reason.
expect_reject() {
  local label=$1 fixture=$2
  shift 2
  local want
  want=$(grep -m1 -o 'expect: .*' "$fixture" | sed -e 's/^expect: //' -e 's/ *\*\/}}$//')
  if [ -z "$want" ]; then
    echo "FAIL $label: $fixture has no 'expect:' line" >&2
    failed=$((failed + 1))
    return
  fi
  if render_and_validate "$label" "$@" >/dev/null; then
    echo "FAIL $label: expected a rejection containing '$want', but it passed" >&2
    failed=$((failed + 1))
  elif grep -qF -- "$want" "$WORK/last.err"; then
    echo "  rejected as expected: $label: $(grep -F -m1 -- "$want" "$WORK/last.err" | sed -e 's/^ *//' -e "s|^$label: ||" | cut -c1-160)"
    passed=$((passed + 1))
  else
    echo "FAIL $label: rejected, but not with '$want':" >&2
    sed 's/^/    /' "$WORK/last.err" >&2
    failed=$((failed + 1))
  fi
}

echo "== check-helm: valid renderings"
expect_pass default "$CHART"
expect_pass values-production.yaml "$CHART" "$CHART/values-production.yaml"
for f in "$TOOLS"/fixtures/good/*.yaml; do
  expect_pass "fixtures/good/$(basename "$f")" "$CHART" "$f"
done
# The router's shipped cost model as router.costModel (JSON is YAML): its keys must pass the schema.
node -e 'const fs=require("fs");process.stdout.write(JSON.stringify({router:{costModel:JSON.parse(fs.readFileSync(process.argv[1],"utf8"))}}))' \
  router/cost_model_h100_llama3_8b.json >"$WORK/cost-model-values.json"
expect_pass "router.costModel=router/cost_model_h100_llama3_8b.json" "$CHART" "$WORK/cost-model-values.json"
if ! grep -q -- '--cost-model=/etc/strata/cost-model/cost_model.json' "$WORK/out.yaml"; then
  echo "FAIL router.costModel: the router is not given --cost-model" >&2
  failed=$((failed + 1))
fi

echo "== check-helm: negative fixtures (each must be rejected)"
for f in "$TOOLS"/fixtures/bad-values/*.yaml "$TOOLS"/fixtures/bad-manifests/*.yaml; do
  expect_reject "${f#"$TOOLS"/}" "$f" "$CHART" "$f"
done
for f in "$TOOLS"/fixtures/bad-templates/*.yaml; do
  rm -rf "$WORK/chart"
  cp -r "$CHART" "$WORK/chart"
  cp "$f" "$WORK/chart/templates/zz-broken.yaml"
  expect_reject "${f#"$TOOLS"/}" "$f" "$WORK/chart"
done

echo "check-helm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
