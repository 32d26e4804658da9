#!/usr/bin/env node
/**
 * Points an example's stack at the sandbox: sets the Pulumi config it reads (hosts, SSH
 * key and known_hosts, registry, images) from `sandbox status --json`.
 *
 *   node scripts/sandbox-config.js <project dir> <stack> [version]
 *
 * Used by `npm run demo` and the example tests; handy by hand too.
 */
const { execFileSync } = require("node:child_process");
const { readFileSync, mkdirSync } = require("node:fs");
const path = require("node:path");

function sandboxState() {
  return JSON.parse(execFileSync("bash", [path.join(__dirname, "sandbox.sh"), "status", "--json"], { encoding: "utf8" }));
}

function configure(dir, stack, version = "v1", env = process.env) {
  const sb = sandboxState();
  const byName = (n) => sb.hosts.find((h) => h.name === n);
  const [app1, app2, db1] = ["app1", "app2", "db1"].map(byName);
  const pulumiYaml = readFileSync(path.join(dir, "Pulumi.yaml"), "utf8");
  const project = pulumiYaml.match(/^name:\s*(\S+)/m)[1];
  const backend = pulumiYaml.match(/url:\s*file:\/\/(\S+)/);
  const run = (args, input) =>
    execFileSync("pulumi", ["--non-interactive", ...args], { cwd: dir, env, input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  // The file backend's directory must exist before the first stack is created.
  if (backend) mkdirSync(path.resolve(dir, backend[1]), { recursive: true });
  try {
    run(["stack", "select", stack]);
  } catch {
    run(["stack", "init", stack]);
  }
  const set = (key, value, secret = false) => run(["config", "set", ...(secret ? ["--secret"] : []), "--stack", stack, "--", key], value);
  const known = readFileSync(app1.knownHostsPath, "utf8");
  const key = readFileSync(app1.privateKeyPath, "utf8");
  const common = () => {
    set("knownHosts", known);
    set("sshPrivateKey", key, true);
    set("registryServer", sb.registry.address);
    set("registryUsername", sb.registry.username);
    set("registryPassword", sb.registry.password, true);
    set("traefikImage", sb.images.traefik);
    set("image", `${sb.registry.address}/kp/testapp`);
    set("healthcheckCmd", "/app probe http://127.0.0.1/up");
    set("version", version);
  };
  // The KamalApp examples: deploy.yml names hosts and registry; config adds keys and secrets.
  const fromDeployYml = () => {
    set("knownHosts", known);
    set("sshPrivateKey", key, true);
    set("traefikImage", sb.images.traefik);
    set("version", version);
    set("KAMAL_REGISTRY_PASSWORD", sb.registry.password, true);
  };
  switch (project) {
    case "kamal-basic":
      common();
      set("host", app1.address);
      break;
    case "kamal-full":
      common();
      run(["config", "set", "--path", "--stack", stack, "hosts[0]", app1.address]);
      run(["config", "set", "--path", "--stack", stack, "hosts[1]", app2.address]);
      run(["config", "set", "--path", "--stack", stack, "hosts[2]", db1.address]);
      set("apiToken", "sandbox-api-token", true);
      break;
    case "kamal-from-deploy-yml":
      fromDeployYml();
      set("API_TOKEN", "sandbox-api-token", true);
      set("STORE_PASSWORD", "sandbox-store-password", true);
      break;
    case "kamal2-from-deploy-yml":
      // API_TOKEN is left to .kamal/secrets (its `$(…)` runs because config has no value).
      fromDeployYml();
      break;
    case "kamal-infra":
      common();
      run(["config", "set", "--path", "--stack", stack, "webAddresses[0]", app1.address]);
      run(["config", "set", "--path", "--stack", stack, "webAddresses[1]", app2.address]);
      break;
    case "kamal-app":
      common();
      set("infraStack", `organization/kamal-infra/${stack}`);
      break;
    default:
      throw new Error(`sandbox-config: no sandbox settings for project ${project}`);
  }
}

module.exports = { configure, sandboxState };

if (require.main === module) {
  const [dir, stack, version] = process.argv.slice(2);
  if (!dir || !stack) {
    console.error("usage: node scripts/sandbox-config.js <project dir> <stack> [version]");
    process.exit(2);
  }
  configure(path.resolve(dir), stack, version);
}
