// Validates one rendering of the strata chart, offline:
//   1. the merged values against the chart's values.schema.json (JSON Schema draft-07, ajv; Helm
//      validates the same merged values before rendering);
//   2. every rendered manifest against the Kubernetes API schemas (kubernetes-models: the schemas of
//      Kubernetes' OpenAPI spec, plus prometheus-operator's CRDs for ServiceMonitor); a kind with no
//      schema here is an error, not a skip;
//   3. what the API server or the controllers would refuse and no schema says: DNS-1123 names,
//      duplicate objects, workload selectors that do not match their pod template, Services,
//      NetworkPolicies and ServiceMonitors that select nothing, container port names;
//   4. the Grafana dashboard ConfigMap: valid JSON whose PromQL names only metrics the binaries
//      export (the names in README.md's Metrics section).
// Usage: node validate.mjs --schema values.schema.json --values merged.json
//            [--manifests rendered.yaml] [--readme README.md] [--label NAME]
// Prints one summary line; exit 1 with every problem on stderr.
import fs from "node:fs";
import Ajv from "ajv";
import { parseAllDocuments } from "yaml";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const label = args.label ?? args.values;
const problems = [];
const fail = (msg) => problems.push(msg);

// 1. values against values.schema.json
const schema = JSON.parse(fs.readFileSync(args.schema, "utf8"));
const values = JSON.parse(fs.readFileSync(args.values, "utf8"));
const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
const validateValues = ajv.compile(schema);
if (!validateValues(values)) {
  for (const e of validateValues.errors) {
    fail(`values${e.instancePath || "/"}: ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}${e.params && e.params.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ""}`);
  }
}

// Model modules by apiVersion/kind.
const MODELS = {
  "v1": (k) => `kubernetes-models/v1/${k}`,
  "apps/v1": (k) => `kubernetes-models/apps/v1/${k}`,
  "policy/v1": (k) => `kubernetes-models/policy/v1/${k}`,
  "networking.k8s.io/v1": (k) => `kubernetes-models/networking.k8s.io/v1/${k}`,
  "monitoring.coreos.com/v1": (k) => `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${k}`,
};
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const kinds = {};
let docs = 0;
if (args.manifests) {
  const text = fs.readFileSync(args.manifests, "utf8");
  const objects = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    const src = `${doc.commentBefore ?? ""}\n${doc.contents?.commentBefore ?? ""}`.match(/Source: (\S+)/)?.[1] ?? "?";
    for (const e of doc.errors) fail(`${src}: YAML: ${e.message.split("\n")[0]}`);
    if (doc.errors.length) continue;
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    objects.push({ src, obj });
  }
  const seen = new Set();
  for (const { src, obj } of objects) {
    docs++;
    const where = `${src} ${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
    const mod = MODELS[obj.apiVersion];
    if (!mod || typeof obj.kind !== "string") { fail(`${where}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`); continue; }
    let Model;
    try { Model = (await import(mod(obj.kind)))[obj.kind]; } catch { Model = undefined; }
    if (!Model) { fail(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`); continue; }
    kinds[obj.kind] = (kinds[obj.kind] ?? 0) + 1;
    try { new Model(obj).validate(); } catch (e) { fail(`${where}: ${e.message}`); }
    // 3. What the API server checks beyond the schema.
    const name = obj.metadata?.name ?? "";
    const nameOk = ["Service", "NetworkPolicy"].includes(obj.kind) ? DNS1123_LABEL.test(name) && name.length <= 63
      : DNS1123_SUBDOMAIN.test(name) && name.length <= 253;
    if (!nameOk) fail(`${where}: metadata.name is not a valid DNS-1123 name`);
    const key = `${obj.kind}/${obj.metadata?.namespace ?? ""}/${name}`;
    if (seen.has(key)) fail(`${where}: duplicate object`);
    seen.add(key);
    for (const [k, v] of Object.entries(obj.metadata?.labels ?? {})) {
      if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) fail(`${where}: label ${k}=${v} is not a valid label value`);
    }
  }
  const pods = objects.filter(({ obj }) => ["Deployment", "DaemonSet", "StatefulSet"].includes(obj.kind));
  const matches = (sel, labels) => Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v);
  for (const { src, obj } of pods) {
    const where = `${src} ${obj.kind}/${obj.metadata?.name}`;
    const sel = obj.spec?.selector?.matchLabels;
    if (!sel || !matches(sel, obj.spec?.template?.metadata?.labels)) fail(`${where}: spec.selector does not match the pod template's labels`);
    const containers = [...(obj.spec?.template?.spec?.containers ?? []), ...(obj.spec?.template?.spec?.initContainers ?? [])];
    for (const c of containers) {
      for (const p of c.ports ?? []) if (p.name && (p.name.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || !/[a-z]/.test(p.name))) fail(`${where}: container ${c.name} port name ${p.name} is not an IANA_SVC_NAME`);
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const port = c[probe]?.grpc?.port;
        if (port !== undefined && !(c.ports ?? []).some((p) => p.containerPort === port)) fail(`${where}: ${probe} port ${port} is not a port of container ${c.name}`);
      }
    }
    if (obj.kind === "StatefulSet" && !objects.some(({ obj: s }) => s.kind === "Service" && s.metadata?.name === obj.spec?.serviceName)) fail(`${where}: serviceName ${obj.spec?.serviceName} is not a Service of this release`);
  }
  const podLabels = pods.map(({ obj }) => obj.spec?.template?.metadata?.labels ?? {});
  for (const { src, obj } of objects) {
    const where = `${src} ${obj.kind}/${obj.metadata?.name}`;
    if (obj.kind === "Service" && obj.spec?.selector && !podLabels.some((l) => matches(obj.spec.selector, l))) fail(`${where}: selects no pod of this release`);
    if (obj.kind === "NetworkPolicy" && !podLabels.some((l) => matches(obj.spec?.podSelector?.matchLabels, l))) fail(`${where}: podSelector selects no pod of this release`);
    if (obj.kind === "PodDisruptionBudget" && !podLabels.some((l) => matches(obj.spec?.selector?.matchLabels, l))) fail(`${where}: selector selects no pod of this release`);
    if (obj.kind === "ServiceMonitor") {
      const svcs = objects.filter(({ obj: s }) => s.kind === "Service" && matches(obj.spec?.selector?.matchLabels, s.metadata?.labels));
      if (!svcs.length) fail(`${where}: selects no Service of this release`);
      for (const ep of obj.spec?.endpoints ?? []) if (!svcs.some(({ obj: s }) => (s.spec?.ports ?? []).some((p) => p.name === ep.port))) fail(`${where}: endpoint port ${ep.port} is not a port of the selected Services`);
    }
  }

  // 4. The Grafana dashboard.
  if (args.readme) {
    const readme = fs.readFileSync(args.readme, "utf8");
    const section = readme.split(/^## Metrics$/m)[1]?.split(/^## /m)[0] ?? "";
    const known = new Set(["strata_auth_denied_total"]);  // the security contract's counter
    for (const m of section.matchAll(/`(strata_[a-z_{},|=]+?)(?:\{[a-z_,=|]+\})?`/g)) {
      // Brace groups such as strata_kv_handover_{blocks,bytes}_total expand to every name.
      let names = [m[1]];
      for (;;) {
        const next = [];
        let expanded = false;
        for (const n of names) {
          const b = n.match(/^(.*?)\{([a-z_,]+)\}(.*)$/);
          if (b) { expanded = true; for (const alt of b[2].split(",")) next.push(b[1] + alt + b[3]); } else next.push(n);
        }
        names = next;
        if (!expanded) break;
      }
      for (const n of names) known.add(n.replace(/\{.*$/, ""));
    }
    const dashboards = objects.filter(({ obj }) => obj.kind === "ConfigMap" && obj.metadata?.labels?.grafana_dashboard !== undefined);
    for (const { src, obj } of dashboards) {
      for (const [file, json] of Object.entries(obj.data ?? {})) {
        let dash;
        try { dash = JSON.parse(json); } catch (e) { fail(`${src}: ${file} is not JSON: ${e.message}`); continue; }
        const exprs = JSON.stringify(dash).match(/strata_[a-z_]+/g) ?? [];
        if (!exprs.length) fail(`${src}: ${file} queries no strata metric`);
        for (const metric of new Set(exprs)) {
          const base = metric.replace(/_(bucket|sum|count)$/, "");
          if (!known.has(metric) && !known.has(base)) fail(`${src}: ${file} queries ${metric}, which README.md's Metrics section does not list`);
        }
      }
    }
    if (!dashboards.length && values.metrics?.dashboard?.enabled) fail("metrics.dashboard.enabled but no dashboard ConfigMap rendered");
  }
}

if (problems.length) {
  for (const p of problems) console.error(`  ${label}: ${p}`);
  process.exit(1);
}
const summary = Object.entries(kinds).sort().map(([k, n]) => `${n} ${k}`).join(", ");
console.log(`  ${label}: values match values.schema.json${args.manifests ? `; ${docs} manifests valid against the Kubernetes schemas (${summary})` : ""}`);
