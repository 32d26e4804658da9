/** Traefik and accessory containers, the port handover, Kamal 1's Let's Encrypt recipe, the ports Traefik serves. */
import { describe, expect, it } from "vitest";
import { accessoryMounts, runAccessory, setPermissions } from "../../../provider/commands/accessory";
import * as docker from "../../../provider/commands/docker";
import { createTraefik, traefikDirs } from "../../../provider/commands/traefik";
import { accessoryContainer, traefikContainer } from "../../../provider/config/schemas";
import { connection } from "./fixtures";

describe("Traefik and accessory commands", () => {
  it("creates Traefik with Kamal's defaults, the API on loopback, user args last", () => {
    const cfg = traefikContainer.parse({
      hostName: "web-1", connection, image: "traefik:v3.6", args: { accesslog: true, "log.level": "ERROR" },
      env: { CF_API_EMAIL: "ops@example.com" }, labels: { "traefik.http.routers.dashboard.rule": "Host(`t.example.com`)" },
    });
    expect(createTraefik(cfg, { name: "traefik_next_a1b2c3", envFile: "/root/.kamal/env/traefik/traefik.env", dirs: traefikDirs("/root") }).text).toBe(
      "docker create --restart unless-stopped --name traefik_next_a1b2c3 --publish 80:80 --publish 127.0.0.1:8080:8080" +
        " --env CF_API_EMAIL=ops@example.com --env-file /root/.kamal/env/traefik/traefik.env" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label 'traefik.http.routers.dashboard.rule=Host(`t.example.com`)' --log-opt max-size=10m traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080" +
        " --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin" +
        " --log.level=ERROR --accesslog",
    );
  });

  it("replaces Traefik in one command: the running one steps aside, the incoming one takes its name", async () => {
    const { replaceTraefik } = await import("../../../provider/commands/traefik");
    expect(replaceTraefik("traefik", "traefik_old_a1b2c3", "traefik_next_a1b2c3", 10).text).toBe(
      "docker stop --time 10 traefik && docker rename traefik traefik_old_a1b2c3 && docker rename traefik_next_a1b2c3 traefik && docker start traefik",
    );
  });

  it("tries a new Traefik configuration beside the serving one: no port, no network, no labels, no restart", async () => {
    const { trialTraefik } = await import("../../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", args: { "no-such-option": "1" }, labels: { "traefik.http.routers.x.rule": "Host(`x`)" } });
    expect(trialTraefik(cfg, { name: "traefik_trial_a1b2c3", dirs: traefikDirs("/root") }).text).toBe(
      "docker run --detach --name traefik_trial_a1b2c3" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label traefik.enable=false --log-opt max-size=10m --network none traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080 --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin --log.level=INFO --no-such-option=1",
    );
  });

  it("keeps the proxy's files in <run directory>/proxy: in the home unless absolute; a changed one is copied over", async () => {
    const { copyProxyFiles } = await import("../../../provider/commands/traefik");
    expect(traefikDirs("/root")).toEqual({ routes: "/root/.kamal/proxy/traefik", acme: "/root/.kamal/proxy/acme", plugins: "/root/.kamal/proxy/plugins-local" });
    expect(traefikDirs("/home/deploy", "run/kamal/")).toEqual({ routes: "/home/deploy/run/kamal/proxy/traefik", acme: "/home/deploy/run/kamal/proxy/acme", plugins: "/home/deploy/run/kamal/proxy/plugins-local" });
    expect(traefikDirs("/root", "/var/lib/kamal")).toEqual({ routes: "/var/lib/kamal/proxy/traefik", acme: "/var/lib/kamal/proxy/acme", plugins: "/var/lib/kamal/proxy/plugins-local" });
    expect(copyProxyFiles("/root/.kamal/proxy/acme", "/var/lib/kamal/proxy/acme").text).toBe("mkdir -p /var/lib/kamal/proxy/acme && cp -a /root/.kamal/proxy/acme/. /var/lib/kamal/proxy/acme/");
  });

  it("joins Traefik to user networks (created if missing) before it starts", () => {
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", networks: ["kamal"] });
    const { ensureNetwork } = docker;
    const cmd = createTraefik(cfg, { name: "traefik_next_a1b2c3", dirs: traefikDirs("/root") });
    expect(cmd.text.endsWith(` --log.level=INFO && ${ensureNetwork("kamal").text} && docker network connect kamal traefik_next_a1b2c3`)).toBe(true);
    expect(cmd.text).toMatch(/^docker create .* traefik:v3\.6 /);
  });

  it("runs an accessory on a user network, created first if missing (Kamal 2's kamal network)", () => {
    const cfg = accessoryContainer.parse({ hostName: "db-1", connection, service: "hey", name: "db", image: "postgres:17", options: { network: "kamal" } });
    expect(runAccessory(cfg, { dataDir: "/root/hey-db" }).text).toBe(
      "{ docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; }" +
        " && docker run --detach --restart unless-stopped --name hey-db --label service=hey-db --label traefik.enable=false --log-opt max-size=10m --network kamal postgres:17",
    );
    expect(docker.runContainer({ name: "a", image: "i", options: { network: "host" } }).text).toBe("docker run --detach --name a --log-opt max-size=10m --network host i");
    expect(runAccessory(cfg, { dataDir: "/root/hey-db" }).policy.repeatable).toBe(false);
  });

  it("sets an accessory's host directory mode and owner, and a file's owner, as Kamal's chmod and chown", () => {
    const cfg = accessoryContainer.parse({
      hostName: "db-1", connection, service: "hey", name: "db", image: "postgres:17",
      directories: [{ path: "data:/var/lib/postgresql/data", mode: "0700", owner: "999:999" }, "logs:/logs"],
      files: [{ target: "/etc/x.conf", content: "x", owner: "postgres" }],
    });
    const m = accessoryMounts(cfg, "/root/hey-db");
    expect(m.directories).toEqual([
      { host: "/root/hey-db/data", target: "/var/lib/postgresql/data", options: undefined, mode: "0700", owner: "999:999" },
      { host: "/root/hey-db/logs", target: "/logs", options: undefined, mode: undefined, owner: undefined },
    ]);
    expect(setPermissions(m.directories[0].host, m.directories[0]).map((c) => c.text)).toEqual(["chmod 0700 /root/hey-db/data", "chown 999:999 /root/hey-db/data"]);
    expect(setPermissions(m.files[0].host, { owner: m.files[0].owner }).map((c) => c.text)).toEqual(["chown postgres /root/hey-db/etc/x.conf"]);
    expect(setPermissions("/x", {})).toEqual([]);
    expect(m.volumes).toEqual(["/root/hey-db/etc/x.conf:/etc/x.conf", "/root/hey-db/data:/var/lib/postgresql/data", "/root/hey-db/logs:/logs"]);
    expect(accessoryContainer.safeParse({ hostName: "db-1", connection, service: "hey", name: "db", image: "i", directories: [{ path: "data:/d", owner: "a b" }] }).error?.issues[0].message).toBe('must be "user" or "user:group"');
  });

  it("puts a container on several networks: created on the first, connected to the rest, then started", () => {
    const ensure = (n: string) => docker.ensureNetwork(n).text;
    const two = docker.runContainer({ name: "a", image: "i", restart: "unless-stopped", options: { network: ["kamal", "backend"], init: true } });
    expect(two.text).toBe(
      `${ensure("kamal")} && ${ensure("backend")} && docker create --restart unless-stopped --name a --log-opt max-size=10m --init --network kamal i` +
        " && docker network connect backend a && docker start a >/dev/null",
    );
    expect(two.policy.repeatable).toBe(false);
    expect(docker.runContainer({ name: "a", image: "i", createOnly: true, options: { network: ["kamal", "host"] } }).text).toBe(`${ensure("kamal")} && docker create --name a --log-opt max-size=10m --network kamal i && docker network connect host a`);
    // The proxy reaches an app by its address on the kamal network, whatever the others are named.
    expect(docker.containerIp("a").text).toBe(`docker container inspect --format '{{with index .NetworkSettings.Networks "kamal"}}{{.IPAddress}} {{end}}{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' a`);
  });

  it("runs an accessory with its files, directories and port", () => {
    const cfg = accessoryContainer.parse({
      hostName: "db-1", connection, service: "hey", name: "mysql", image: "mysql:8.0", port: "127.0.0.1:3306:3306",
      env: { MYSQL_ROOT_HOST: "%" }, files: [{ target: "/etc/mysql/my.cnf", content: "[mysqld]\n" }],
      directories: ["data:/var/lib/mysql"], options: { "cap-add": true },
    });
    expect(runAccessory(cfg, { dataDir: "/root/hey-mysql", envFile: "/root/.kamal/env/accessories/hey-mysql.env" }).text).toBe(
      "docker run --detach --restart unless-stopped --name hey-mysql --publish 127.0.0.1:3306:3306" +
        " --env MYSQL_ROOT_HOST=% --env-file /root/.kamal/env/accessories/hey-mysql.env" +
        " --volume /root/hey-mysql/etc/mysql/my.cnf:/etc/mysql/my.cnf --volume /root/hey-mysql/data:/var/lib/mysql" +
        " --label service=hey-mysql --label traefik.enable=false --log-opt max-size=10m --cap-add mysql:8.0",
    );
  });
});

describe("handing a port from one proxy to another", () => {
  const r = { hostPort: 80, to: "172.17.0.3", toPort: 80, id: "a1b2c3" };
  const dnat = "-m comment --comment kamal-handover-a1b2c3 -j DNAT --to-destination 172.17.0.3:80";

  it("redirects new connections to the bridge ahead of Docker's rules, and admits them", async () => {
    const h = await import("../../../provider/commands/portRedirect");
    expect(h.addRedirect(r, false).text).toBe(
      `iptables -w 5 -t nat -I PREROUTING 1 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat}` +
        ` && iptables -w 5 -t nat -I OUTPUT 1 '!' -d 127.0.0.0/8 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat}` +
        " && iptables -w 5 -t filter -I DOCKER-USER 1 -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT",
    );
    // A port bound to one address, through passwordless sudo.
    expect(h.addRedirect({ ...r, hostPort: "10.0.0.5:8080" }, true).text).toBe(
      "sudo -n iptables -w 5 -t nat -I PREROUTING 1 -d 10.0.0.5 -p tcp --dport 8080 -m addrtype --dst-type LOCAL " + dnat +
        " && sudo -n iptables -w 5 -t nat -I OUTPUT 1 '!' -d 127.0.0.0/8 -d 10.0.0.5 -p tcp --dport 8080 -m addrtype --dst-type LOCAL " + dnat +
        " && sudo -n iptables -w 5 -t filter -I DOCKER-USER 1 -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT",
    );
  });

  it("removes the redirect first, the admission once the bridge has drained; missing rules are fine", async () => {
    const h = await import("../../../provider/commands/portRedirect");
    const nat =
      `iptables -w 5 -t nat -D PREROUTING -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat} 2>/dev/null;` +
      ` iptables -w 5 -t nat -D OUTPUT '!' -d 127.0.0.0/8 -p tcp --dport 80 -m addrtype --dst-type LOCAL ${dnat} 2>/dev/null; `;
    expect(h.removeRedirect(r, false).text).toBe(`${nat}true`);
    expect(h.removeRedirect(r, false, true).text).toBe(
      `${nat}iptables -w 5 -t filter -D DOCKER-USER -d 172.17.0.3 -p tcp --dport 80 -m comment --comment kamal-handover-a1b2c3 -j ACCEPT 2>/dev/null; true`,
    );
  });

  it("finds and deletes what an interrupted handover left, quoting every word iptables printed", async () => {
    const h = await import("../../../provider/commands/portRedirect");
    expect(h.listRedirects(false).text).toBe(
      "iptables -w 5 -t nat -S PREROUTING 2>/dev/null | sed -n 's/^/nat /; /kamal-handover-/p';" +
        " iptables -w 5 -t nat -S OUTPUT 2>/dev/null | sed -n 's/^/nat /; /kamal-handover-/p';" +
        " iptables -w 5 -t filter -S DOCKER-USER 2>/dev/null | sed -n 's/^/filter /; /kamal-handover-/p'",
    );
    expect(h.deleteListedRule('nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment "kamal-handover-ff0011" -j DNAT --to-destination 172.17.0.3:80', true)?.text).toBe(
      "sudo -n iptables -w 5 -t nat -D PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment kamal-handover-ff0011 -j DNAT --to-destination 172.17.0.3:80 2>/dev/null; true",
    );
    expect(h.deleteListedRule("nat -N DOCKER", false)?.text).toBeUndefined();
    expect(h.deleteListedRule("raw -A PREROUTING -j DROP", false)?.text).toBeUndefined();
    expect(h.probeIptables(true).text).toBe("sudo -n iptables -w 5 -t nat -S DOCKER");
  });

  it("starts the bridge Traefik unpublished, on Traefik's networks, unrouted, telling clients to reconnect", async () => {
    const { bridgeTraefik } = await import("../../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", networks: ["kamal"], labels: { "traefik.http.routers.x.rule": "Host(`x`)" } });
    expect(bridgeTraefik(cfg, { name: "traefik_handover_a1b2c3", dirs: traefikDirs("/root") }).text).toBe(
      "docker create --name traefik_handover_a1b2c3" +
        " --volume /var/run/docker.sock:/var/run/docker.sock --volume /root/.kamal/proxy/traefik:/etc/traefik/kamal:ro --volume /root/.kamal/proxy/plugins-local:/plugins-local:ro" +
        " --label traefik.enable=false --log-opt max-size=10m traefik:v3.6" +
        " --providers.docker --providers.file.directory=/etc/traefik/kamal --providers.file.watch" +
        " --providers.providersThrottleDuration=50ms --serverstransport.forwardingtimeouts.idleconntimeout=1s --entrypoints.http.address=:80 --entrypoints.http.transport.keepAliveMaxTime=2s" +
        " --api.insecure --entrypoints.traefik.address=:8080" +
        " --experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin --log.level=INFO" +
        " && { docker network inspect kamal >/dev/null 2>&1 || { i=0; until mkdir /tmp/.kamal-network-kamal.lock 2>/dev/null || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done; docker network inspect kamal >/dev/null 2>&1 || docker network create kamal >/dev/null; r=$?; rmdir /tmp/.kamal-network-kamal.lock 2>/dev/null; [ $r -eq 0 ]; }; }" +
        " && docker network connect kamal traefik_handover_a1b2c3 && docker start traefik_handover_a1b2c3",
    );
  });

  it("stops kamal-proxy (kept under its name) and starts Traefik in one command", async () => {
    const { replaceKamalProxy } = await import("../../../provider/commands/traefik");
    expect(replaceKamalProxy("kamal-proxy", "traefik_next_a1b2c3", 10).text).toBe(
      "docker stop --time 10 kamal-proxy && docker rename traefik_next_a1b2c3 traefik && docker start traefik",
    );
  });

  it("reads kamal-proxy's services from `kamal-proxy list` (v0.9.2), empty cells included", async () => {
    const { parseKamalProxyList, kamalProxyList } = await import("../../../provider/commands/kamalProxy");
    expect(kamalProxyList().text).toBe("docker exec kamal-proxy kamal-proxy list");
    const b = (s: string) => `\x1b[1;34m${s}\x1b[0m`;
    const i = (s: string) => `\x1b[3;94m${s}\x1b[0m`;
    const p = (s: string) => `\x1b[m${s}\x1b[0m`;
    const text =
      [i("Service      "), i("Host                   "), i("Path  "), i("Target           "), i("State  "), i("TLS")].join("  ") + "  \n" +
      [b("hey-web      "), p("hey.example.com,hey.io "), p("      "), p("0a1b2c3d4e5f:80  "), p("running"), p("no ")].join("  ") + "  \n" +
      [b("hey-api-stage"), p("*                      "), p("/api  "), p("9f8e7d6c5b4a:3000"), p("paused "), p("yes")].join("  ") + "  \n";
    expect(parseKamalProxyList(text)).toEqual([
      { name: "hey-web", hosts: ["hey.example.com", "hey.io"], paths: [], targets: ["0a1b2c3d4e5f:80"], state: "running", tls: false },
      { name: "hey-api-stage", hosts: [], paths: ["/api"], targets: ["9f8e7d6c5b4a:3000"], state: "paused", tls: true },
    ]);
    expect(() => parseKamalProxyList("Name Where\nx y\n")).toThrow("unexpected `kamal-proxy list` output: Name Where");
  });

  it("finds where kamal-proxy keeps each HTTPS service's certificate, from its saved state (v0.9.2)", async () => {
    const { parseKamalProxyState, autocertFiles, kamalProxyFile, KAMAL_PROXY_STATE } = await import("../../../provider/commands/kamalProxy");
    expect(kamalProxyFile(KAMAL_PROXY_STATE).text).toBe("docker cp kamal-proxy:/home/kamal-proxy/.config/kamal-proxy/kamal-proxy.state - | tar -xOf -");
    // As Router#saveStateSnapshot writes it (trimmed to the options a takeover reads).
    const state = JSON.stringify([
      { name: "hey-web", active_targets: ["0a1b2c3d4e5f:80"], options: { hosts: ["hey.example.com", "www.hey.example.com"], tls_enabled: true, tls_certificate_path: "", tls_private_key_path: "", tls_redirect: true, acme_directory: "", acme_cache_path: "/home/kamal-proxy/.config/kamal-proxy/certs" } },
      { name: "hey-admin", active_targets: ["9f8e7d6c5b4a:80"], options: { hosts: ["admin.hey.example.com"], tls_enabled: true, tls_certificate_path: "/home/kamal-proxy/.apps-config/hey/tls/admin/cert.pem", tls_private_key_path: "/home/kamal-proxy/.apps-config/hey/tls/admin/key.pem", tls_redirect: false, acme_cache_path: "/home/kamal-proxy/.config/kamal-proxy/certs" } },
      { name: "hey-api", active_targets: ["5b4a9f8e7d6c:3000"], options: { hosts: ["api.hey.example.com"], tls_enabled: false } },
    ]);
    // The cache directory: the cache path, then SHA-256 of the ACME directory URL ("" = Let's Encrypt's default).
    const cache = "/home/kamal-proxy/.config/kamal-proxy/certs/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    expect(parseKamalProxyState(state)).toEqual([
      { service: "hey-web", hosts: ["hey.example.com", "www.hey.example.com"], redirect: true, source: { kind: "acme", cache } },
      { service: "hey-admin", hosts: ["admin.hey.example.com"], redirect: false, source: { kind: "files", certificate: "/home/kamal-proxy/.apps-config/hey/tls/admin/cert.pem", key: "/home/kamal-proxy/.apps-config/hey/tls/admin/key.pem" } },
    ]);
    expect(parseKamalProxyState("")).toEqual([]);
    expect(autocertFiles(cache, "hey.example.com")).toEqual([`${cache}/hey.example.com`, `${cache}/hey.example.com+rsa`]);
  });

  it("splits an autocert cache entry into key and chain, and adds certificates to Traefik's ACME store keeping the rest", async () => {
    const { splitKeyAndChain } = await import("../../../provider/commands/kamalProxy");
    const { withAcmeCertificates } = await import("../../../provider/commands/traefik");
    const block = (kind: string, body: string) => `-----BEGIN ${kind}-----\n${body}\n-----END ${kind}-----\n`;
    const key = block("EC PRIVATE KEY", "a2V5");
    const leaf = block("CERTIFICATE", "bGVhZg==");
    const issuer = block("CERTIFICATE", "aXNzdWVy");
    expect(splitKeyAndChain(key + leaf + issuer)).toEqual({ privateKeyPem: key, certificatePem: leaf + issuer });
    expect(splitKeyAndChain(leaf)).toBeUndefined();
    expect(splitKeyAndChain("not a pem")).toBeUndefined();

    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const before = JSON.stringify({
      letsencrypt: { Account: { Email: "ops@hey.example.com" }, Certificates: [{ domain: { main: "hey.example.com" }, certificate: "b2xk", key: "b2xk", Store: "default" }, { domain: { main: "other.example.com" }, certificate: "eA==", key: "eA==", Store: "default" }] },
      staging: { Account: null, Certificates: [] },
    });
    expect(JSON.parse(withAcmeCertificates(before, "letsencrypt", [{ host: "hey.example.com", certificatePem: leaf + issuer, privateKeyPem: key }]))).toEqual({
      letsencrypt: {
        Account: { Email: "ops@hey.example.com" },
        Certificates: [
          { domain: { main: "other.example.com" }, certificate: "eA==", key: "eA==", Store: "default" },
          { domain: { main: "hey.example.com" }, certificate: b64(leaf + issuer), key: b64(key), Store: "default" },
        ],
      },
      staging: { Account: null, Certificates: [] },
    });
    // A new store (the empty file ensureAcmeStore makes).
    expect(JSON.parse(withAcmeCertificates("", "le", [{ host: "a.example", certificatePem: leaf, privateKeyPem: key }]))).toEqual({
      le: { Account: null, Certificates: [{ domain: { main: "a.example" }, certificate: b64(leaf), key: b64(key), Store: "default" }] },
    });
  });
});

describe("Kamal 1's Let's Encrypt recipe: the user's own entrypoint on port 80", () => {
  it("takes the place of ours: no second listener on :80 or :443, keep-alive rotation on theirs", async () => {
    const { traefikArgs, webEntrypoint } = await import("../../../provider/commands/traefik");
    const args = {
      "entryPoints.web.address": ":80",
      "entryPoints.websecure.address": ":443",
      "entryPoints.web.http.redirections.entryPoint.to": "websecure",
      "certificatesResolvers.letsencrypt.acme.httpchallenge.entrypoint": "web",
    };
    expect(webEntrypoint(args)).toEqual({ name: "web", ours: false });
    expect(webEntrypoint({ "entrypoints.http.address": "0.0.0.0:80/tcp" })).toEqual({ name: "http", ours: false });
    expect(webEntrypoint({ "entryPoints.websecure.address": ":443" })).toEqual({ name: "http", ours: true });
    expect(traefikArgs({ image: "traefik:v2.11", apiPort: 8080, args })).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch",
      "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s", "--entrypoints.web.transport.keepAliveMaxTime=2s",
      "--entrypoints.websecure.transport.keepAliveMaxTime=2s", "--api.insecure", "--entrypoints.traefik.address=:8080",
      "--experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin", "--log.level=INFO",
      "--entryPoints.web.address=:80", "--entryPoints.websecure.address=:443",
      "--entryPoints.web.http.redirections.entryPoint.to=websecure", "--certificatesResolvers.letsencrypt.acme.httpchallenge.entrypoint=web",
    ]);
  });

  it("sets keepAliveMaxTime only for a Traefik that knows it (v2.11 and later, or any other tag)", async () => {
    const { knowsKeepAliveMax, traefikArgs } = await import("../../../provider/commands/traefik");
    expect(["traefik:v2.10", "traefik:2.9.6", "registry.example.com:5000/traefik:v1.7"].map(knowsKeepAliveMax)).toEqual([false, false, false]);
    expect(["traefik:v2.11", "traefik:v3.6", "traefik:latest", "traefik", "registry.example.com:5000/traefik", "traefik:v3.6@sha256:abc"].map(knowsKeepAliveMax)).toEqual([true, true, true, true, true, true]);
    expect(traefikArgs({ image: "traefik:v2.10", apiPort: 0, args: {} })).toEqual([
      "--providers.docker", "--providers.file.directory=/etc/traefik/kamal", "--providers.file.watch",
      "--providers.providersThrottleDuration=50ms", "--serverstransport.forwardingtimeouts.idleconntimeout=1s", "--entrypoints.http.address=:80",
      "--experimental.localplugins.kamal.modulename=github.com/pulumi-kamal/traefikplugin", "--log.level=INFO",
    ]);
  });

  it("routes on every web entrypoint, whatever it is called: route files and labels name none", async () => {
    const { routeConfig } = await import("../../../provider/commands/proxy");
    expect(JSON.parse(routeConfig({ name: "hey-web", rule: "PathPrefix(`/`)", servers: ["http://172.18.0.5:80"] })).http.routers).toEqual({
      "hey-web": { rule: "PathPrefix(`/`)", service: "hey-web", middlewares: ["hey-web-retry"] },
    });
  });
});

describe("the ports a Traefik takes traffic on", () => {
  it("are the web port and those its options publish; a trial or bridge Traefik publishes none", async () => {
    const { trafficPorts, trialTraefik, bridgeTraefik } = await import("../../../provider/commands/traefik");
    const cfg = traefikContainer.parse({ hostName: "web-1", connection, image: "traefik:v3.6", options: { publish: ["443:443", "10.0.0.5:8443:443/tcp", "53:53/udp"], memory: "256m" } });
    expect(trafficPorts(cfg)).toEqual([
      { host: "80", container: 80 },
      { host: "443", container: 443 },
      { host: "10.0.0.5:8443", container: 443 },
    ]);
    expect(trafficPorts(traefikContainer.parse({ hostName: "web-1", connection, image: "t", hostPort: "127.0.0.1:8080:80" }))).toEqual([{ host: "127.0.0.1:8080", container: 80 }]);
    const at = { name: "traefik_x", dirs: traefikDirs("/root") };
    for (const cmd of [trialTraefik(cfg, at), bridgeTraefik(cfg, at)]) {
      expect(cmd.text).not.toMatch(/--publish|-p /);
      expect(cmd.text).toContain("--memory 256m");
    }
  });
});
