/**
 * Hosts left exactly as Kamal leaves them after `kamal setup` of a version, for takeover
 * tests: the same container names, labels, arguments, env files, cords and directories as
 * Kamal's command builders produce (read from basecamp/kamal: v1.9.2 for Kamal 1, v2.12.0
 * for Kamal 2 with kamal-proxy v0.9.2, its MINIMUM_VERSION). Only the images differ: the
 * sandbox's Traefik build, and kamal-proxy built from its Go module, tagged on the host as
 * `basecamp/kamal-proxy:v0.9.2` as Kamal pulls it.
 *
 * Commands are run as Kamal runs them, over SSH as root, from the user's home.
 */
import { randomBytes } from "node:crypto";
import { shellJoin } from "../../provider/commands/shell";
import type { SshConnection } from "../../provider/ssh/executor";
import { sandbox, onHost } from "../../testbed/sandbox";

export interface KamalApp {
  service: string;
  role: string;
  version: string;
  /** The host's address, as deploy.yml lists it (Kamal 2 passes it as KAMAL_HOST). */
  host: string;
  /** Clear env of the role; secret env goes to the env file. */
  env: Record<string, string>;
  secretEnv: Record<string, string>;
}

const image = (version: string) => `${sandbox().registry.address}/kp/testapp:${version}`;

async function login(conn: SshConnection): Promise<void> {
  const r = sandbox().registry;
  await conn.exec(onHost(shellJoin(["docker", "login", r.address, "-u", r.username, "--password-stdin"])), { stdin: r.password });
}

function envFile(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join("");
}

/** Kamal 1.9.2: `kamal traefik boot` then `kamal app boot` of the primary role `web`,
 * with `healthcheck.cmd` (the test app has no curl), port 80, interval 1s, and the cord
 * where `healthcheck.cord` puts it in the container (Kamal's default /tmp/kamal-cord). */
export async function leaveAsKamal1(conn: SshConnection, app: KamalApp, traefikImage: string, traefikArgs: Record<string, string> = {}, publish: string[] = [], cordPath = "/tmp/kamal-cord"): Promise<void> {
  await login(conn);
  // Kamal::Commands::Traefik#run (v1.9.2), env file from Kamal::Configuration::Traefik#env.
  await conn.exec(onHost("mkdir -p .kamal/env/traefik && touch .kamal/env/traefik/traefik.env && chmod 600 .kamal/env/traefik/traefik.env"));
  await conn.exec(onHost(shellJoin(["docker", "pull", traefikImage])));
  await conn.exec(
    onHost(shellJoin([
      "docker", "run", "--name", "traefik", "--detach", "--restart", "unless-stopped",
      "--publish", "80:80",
      "--volume", "/var/run/docker.sock:/var/run/docker.sock",
      "--env-file", ".kamal/env/traefik/traefik.env",
      "--log-opt", "max-size=10m",
      "--label", "traefik.http.routers.catchall.entryPoints=http",
      "--label", "traefik.http.routers.catchall.rule=PathPrefix(`/`)",
      "--label", "traefik.http.routers.catchall.service=unavailable",
      "--label", "traefik.http.routers.catchall.priority=1",
      "--label", "traefik.http.services.unavailable.loadbalancer.server.port=0",
      // traefik.options (optionize): `publish: [...]` as --publish each.
      ...publish.flatMap((p) => ["--publish", p]),
      // Traefik::DEFAULT_ARGS merged with traefik.args, as `--key=value`.
      traefikImage, "--providers.docker", ...Object.entries({ "log.level": "DEBUG", ...traefikArgs }).map(([k, v]) => `--${k}=${v}`),
    ])),
  );
  // Kamal::Commands::App#run (v1.9.2) with Role#health_check_args (cord) and #label_args.
  const prefix = `${app.service}-${app.role}`;
  const name = `${prefix}-${app.version}`;
  const cord = `.kamal/cords/${prefix}-${randomBytes(16).toString("hex")}`;
  await conn.exec(onHost(`mkdir -p .kamal/env/roles && umask 077 && cat > .kamal/env/roles/${prefix}.env`), { stdin: envFile(app.secretEnv) });
  await conn.exec(onHost(`mkdir -p ${cord} && touch ${cord}/cord`));
  await conn.exec(
    onHost(shellJoin([
      "docker", "run", "--detach", "--restart", "unless-stopped", "--name", name,
      "-e", `KAMAL_CONTAINER_NAME=${name}`, "-e", `KAMAL_VERSION=${app.version}`,
      "--env-file", `.kamal/env/roles/${prefix}.env`,
      ...Object.entries(app.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      "--health-cmd", `(/app probe http://127.0.0.1/up) && (stat ${cordPath}/cord > /dev/null || exit 1)`,
      "--health-interval", "1s",
      "--volume", `/root/${cord}:${cordPath}`,
      "--log-opt", "max-size=10m",
      "--label", `service=${app.service}`, "--label", `role=${app.role}`, "--label", "destination",
      "--label", `traefik.http.services.${prefix}.loadbalancer.server.scheme=http`,
      "--label", `traefik.http.routers.${prefix}.rule=PathPrefix(\`/\`)`,
      "--label", `traefik.http.routers.${prefix}.priority=2`,
      "--label", `traefik.http.middlewares.${prefix}-retry.retry.attempts=5`,
      "--label", `traefik.http.middlewares.${prefix}-retry.retry.initialinterval=500ms`,
      "--label", `traefik.http.routers.${prefix}.middlewares=${prefix}-retry@docker`,
      image(app.version),
    ])),
  );
  // Kamal::Cli::Healthcheck::Poller: boot waits until the container is healthy.
  await waitFor(conn, `docker inspect --format '{{.State.Health.Status}}' ${name} | grep -qx healthy`, `${name} healthy`);
}

export const KAMAL_PROXY_IMAGE = "basecamp/kamal-proxy:v0.9.2";

/** A certificate kamal-proxy serves a Kamal 2 role with: `acme`, one Let's Encrypt issued
 * (`proxy.ssl: true`), found in its autocert cache; `files`, the user's own
 * (`proxy.ssl.certificate_pem`/`private_key_pem`), uploaded by Kamal. */
export interface KamalProxyCertificate {
  kind: "acme" | "files";
  certificatePem: string;
  privateKeyPem: string;
}

/** Kamal 2.12.0: `kamal proxy boot` (defaults: ports 80 and 443, log max-size 10m, no
 * run command; a kamal-proxy already there is kept) then `kamal app boot` of the role
 * behind it, deployed with the proxy settings given (`proxy.host`, `proxy.healthcheck.path`,
 * `proxy.ssl`). */
export async function leaveAsKamal2(
  conn: SshConnection,
  app: KamalApp,
  proxy: { host?: string; healthcheckPath: string; healthcheckInterval?: number; ssl?: KamalProxyCertificate },
): Promise<void> {
  await login(conn);
  // Kamal::Commands::Docker#create_network; Kamal::Commands::Proxy#run (boot_config defaults).
  await conn.exec(onHost("docker network create kamal >/dev/null 2>&1 || true"));
  const mirrored = sandbox().images.kamalProxy;
  await conn.exec(onHost(`${shellJoin(["docker", "pull", mirrored])} && ${shellJoin(["docker", "tag", mirrored, KAMAL_PROXY_IMAGE])}`));
  await conn.exec(onHost("mkdir -p .kamal/proxy/apps-config"));
  await conn.exec(
    onHost(`docker container inspect kamal-proxy >/dev/null 2>&1 || ${shellJoin([
      "docker", "run", "--name", "kamal-proxy", "--network", "kamal", "--detach", "--restart", "unless-stopped",
      "--volume", "kamal-proxy-config:/home/kamal-proxy/.config/kamal-proxy",
      "--volume", "/root/.kamal/proxy/apps-config:/home/kamal-proxy/.apps-config",
      "--publish", "80:80", "--publish", "443:443", "--log-opt", "max-size=10m",
      KAMAL_PROXY_IMAGE,
    ])}`),
  );
  await waitFor(conn, "docker exec kamal-proxy kamal-proxy list >/dev/null 2>&1", "kamal-proxy answering");
  const tlsArgs = proxy.ssl ? await placeCertificate(conn, app, proxy.host!, proxy.ssl) : [];
  // Kamal::Cli::App::Boot#start_new_version (v2.12.0): env file, run, then deploy to the proxy.
  const prefix = `${app.service}-${app.role}`;
  const name = `${prefix}-${app.version}`;
  const envDir = `.kamal/apps/${app.service}/env/roles`;
  await conn.exec(onHost(`mkdir -p ${envDir} && umask 077 && cat > ${envDir}/${app.role}.env`), { stdin: envFile(app.secretEnv) });
  await conn.exec(
    onHost(shellJoin([
      "docker", "run", "--detach", "--restart", "unless-stopped", "--name", name, "--network", "kamal",
      "--hostname", `${app.host}-${randomBytes(6).toString("hex")}`,
      "--env", `KAMAL_CONTAINER_NAME=${name}`, "--env", `KAMAL_VERSION=${app.version}`, "--env", `KAMAL_HOST=${app.host}`,
      "--env-file", `${envDir}/${app.role}.env`,
      ...Object.entries(app.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
      "--log-opt", "max-size=10m",
      "--label", `service=${app.service}`, "--label", `role=${app.role}`, "--label", "destination",
      image(app.version),
    ])),
  );
  const id = (await conn.exec(onHost(shellJoin(["docker", "container", "ls", "--all", "--filter", `name=^${name}$`, "--quiet"])))).stdout.trim();
  await conn.exec(
    onHost(shellJoin([
      "docker", "exec", "kamal-proxy", "kamal-proxy", "deploy", prefix, `--target=${id}:80`,
      ...(proxy.host ? [`--host=${proxy.host}`] : []),
      ...tlsArgs,
      "--deploy-timeout=30s", "--drain-timeout=30s",
      ...(proxy.healthcheckInterval ? [`--health-check-interval=${proxy.healthcheckInterval}s`] : []),
      `--health-check-path=${proxy.healthcheckPath}`,
      "--buffer-requests", "--buffer-responses",
      "--log-request-header=Cache-Control", "--log-request-header=Last-Modified", "--log-request-header=User-Agent",
    ])),
  );
}

/** Where the role's certificate is when kamal-proxy is told to serve it; the deploy's TLS
 * arguments (Kamal::Configuration::Proxy#deploy_options). `acme`: as autocert leaves a
 * certificate it obtained (this sandbox reaches no Let's Encrypt): in the cache directory
 * of Let's Encrypt's URL, the key's PEM then the chain's, mode 0600, owned by kamal-proxy.
 * `files`: as Kamal::Cli::App::SslCertificates uploads them (0644), in the apps-config
 * directory kamal-proxy sees at ~/.apps-config. */
async function placeCertificate(conn: SshConnection, app: KamalApp, name: string, c: KamalProxyCertificate): Promise<string[]> {
  if (c.kind === "files") {
    const dir = `.kamal/proxy/apps-config/${app.service}/tls/${app.role}`;
    await conn.exec(onHost(`mkdir -p ${dir} && cat > ${dir}/cert.pem && chmod 644 ${dir}/cert.pem`), { stdin: c.certificatePem });
    await conn.exec(onHost(`cat > ${dir}/key.pem && chmod 644 ${dir}/key.pem`), { stdin: c.privateKeyPem });
    const inProxy = `/home/kamal-proxy/.apps-config/${app.service}/tls/${app.role}`;
    return ["--tls", `--tls-certificate-path=${inProxy}/cert.pem`, `--tls-private-key-path=${inProxy}/key.pem`];
  }
  // kamal-proxy's ACME directory "" (Let's Encrypt's default), scoped by its SHA-256.
  const scope = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const volume = (await conn.exec(onHost("docker volume inspect kamal-proxy-config --format '{{.Mountpoint}}'"))).stdout.trim();
  const dir = `${volume}/certs/${scope}`;
  await conn.exec(onHost(`mkdir -p ${dir} && umask 077 && cat > ${dir}/${name} && chown -R 1000:1000 ${volume}/certs && chmod 700 ${volume}/certs ${dir}`), { stdin: c.privateKeyPem + c.certificatePem });
  return ["--tls"];
}

async function waitFor(conn: SshConnection, check: string, what: string, limitMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while ((await conn.run(onHost(check))).code !== 0) {
    if (Date.now() - t0 > limitMs) throw new Error(`waited ${limitMs / 1000}s for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
