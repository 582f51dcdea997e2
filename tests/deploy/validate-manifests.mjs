// Validates Kubernetes objects against the OpenAPI schemas of Kubernetes (kubernetes-models, from
// npm's default registry: precompiled validators for the Kubernetes 1.36 schemas, no cluster
// needed) and the Prometheus Operator's ServiceMonitor. Reads a JSON array of objects on stdin;
// prints one line per object; exits 1 if any object is invalid or of a kind it has no schema for.
import { readFileSync } from "node:fs";

const packages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const base = packages[group] ?? "kubernetes-models";
  const path = group ? `${base}/${group}/${version}/${kind}` : `${base}/${version}/${kind}`;
  const module = await import(path);
  return module[kind];
}

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const object of objects) {
  const name = `${object.kind}/${object.metadata?.name}`;
  let Model;
  try {
    Model = await modelOf(object.apiVersion, object.kind);
  } catch (e) {
    console.log(`FAIL ${name}: no schema for ${object.apiVersion} ${object.kind} (${e.code ?? e.message})`);
    failed++;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`ok   ${name} (${object.apiVersion})`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}
console.log(`${objects.length - failed} valid, ${failed} invalid`);
process.exit(failed ? 1 : 0);
