/**
 * Taking over Kamal 2's kamal-proxy: what it serves becomes Traefik's route files (the same
 * names as this provider's scopes, so that a Service of the stack then moves its scope to
 * its new container as usual), and the certificates it serves HTTPS with move into
 * Traefik's stores before any Traefik starts, so that HTTPS clients meet the same
 * certificate before, during and after the handover:
 *
 * - a certificate kamal-proxy had from Let's Encrypt (its autocert cache) goes into
 *   Traefik's ACME store under the Traefik's resolver, which renews it from then on;
 * - the user's own certificate (`proxy.ssl.certificate_pem`, as Kamal uploads it) goes beside
 *   the service's route file, where the Service keeps its own certificate.
 *
 * Refused before anything changes: a service in maintenance; an HTTPS service when this
 * Traefik has no HTTPS entrypoint; a certificate that cannot be read (or has expired) when
 * no ACME resolver would issue one.
 */
import { X509Certificate } from "node:crypto";
import { hostRule } from "../commands/app";
import * as docker from "../commands/docker";
import { readFile } from "../commands/files";
import {
  autocertFiles,
  KAMAL_PROXY_STATE,
  kamalProxyFile,
  kamalProxyList,
  parseKamalProxyList,
  parseKamalProxyState,
  splitKeyAndChain,
  type KamalProxyService,
} from "../commands/kamalProxy";
import { routeConfig, routeFile, tlsConfig, tlsFile } from "../commands/proxy";
import { secureEntrypoint, webEntrypoint, withAcmeCertificates, type HostCertificate, type TraefikDirs } from "../commands/traefik";
import type { TraefikContainerConfig } from "../config/schemas";
import type { SshConnection } from "../ssh/executor";

/** How an HTTPS service of kamal-proxy is served once Traefik has it. */
interface TakenTls {
  redirect: boolean;
  /** Its certificates go into Traefik's ACME store (else beside its route file). */
  acme: boolean;
  certificates: HostCertificate[];
  /** Host names kamal-proxy has no usable certificate for (the ACME resolver issues them). */
  missing: string[];
}

/** What kamal-proxy serves and how Traefik takes it: read before anything changes. */
export interface KamalProxyTakeover {
  services: KamalProxyService[];
  tls: Map<string, TakenTls>;
  /** Why it cannot be taken over, if it cannot. */
  refusal?: string;
  /** What happens to its certificates, for the preview and the progress lines. */
  notes: string[];
}

/** What kamal-proxy serves (`kamal-proxy list` in its container). */
export async function kamalProxyServices(conn: SshConnection): Promise<KamalProxyService[]> {
  const listed = await conn.run(kamalProxyList());
  if (listed.code !== 0) throw new Error(`\`kamal-proxy list\` failed (exit ${listed.code}): ${listed.stderr.trim()}; kamal-proxy was left serving`);
  return parseKamalProxyList(listed.stdout);
}

/** Reads kamal-proxy's services and the certificates of those it serves over HTTPS. */
export async function readKamalProxy(conn: SshConnection, cfg: TraefikContainerConfig): Promise<KamalProxyTakeover> {
  const services = await kamalProxyServices(conn);
  const taken: KamalProxyTakeover = { services, tls: new Map(), notes: [] };
  const paused = services.find((s) => s.state !== "running");
  if (paused) return { ...taken, refusal: `kamal-proxy has ${paused.name} ${paused.state} (maintenance mode): run \`kamal app live\` first` };
  const https = services.filter((s) => s.tls);
  if (!https.length) return taken;
  if (!secureEntrypoint(cfg)) {
    return { ...taken, refusal: `kamal-proxy serves ${https.map((s) => s.name).join(", ")} over HTTPS (proxy.ssl) and this Traefik has no HTTPS entrypoint: give the role's proxy ssl (or the Traefik tls) so that it takes port 443 too` };
  }
  const stateRead = await conn.run(kamalProxyFile(KAMAL_PROXY_STATE));
  let state: ReturnType<typeof parseKamalProxyState>;
  try {
    if (stateRead.code !== 0) throw new Error(stateRead.stderr.trim() || `exit ${stateRead.code}`);
    state = parseKamalProxyState(stateRead.stdout);
  } catch (e) {
    return { ...taken, refusal: `kamal-proxy's saved state (${KAMAL_PROXY_STATE}) could not be read, so neither could its certificates: ${(e as Error).message}` };
  }
  const resolver = cfg.tls?.acme?.resolver;
  for (const s of https) {
    const saved = state.find((x) => x.service === s.name);
    if (!saved) return { ...taken, refusal: `kamal-proxy's saved state has no ${s.name}, so its certificates cannot be found` };
    const certificates: HostCertificate[] = [];
    if (saved.source.kind === "files") {
      const [cert, key] = await Promise.all([saved.source.certificate, saved.source.key].map((f) => conn.run(kamalProxyFile(f))));
      if (cert.code === 0 && key.code === 0) {
        for (const host of s.hosts) if (usable(cert.stdout, host)) certificates.push({ host, certificatePem: cert.stdout, privateKeyPem: key.stdout });
      }
    } else {
      for (const host of s.hosts) {
        for (const f of autocertFiles(saved.source.cache, host)) {
          const r = await conn.run(kamalProxyFile(f));
          const pair = r.code === 0 ? splitKeyAndChain(r.stdout) : undefined;
          if (pair && usable(pair.certificatePem, host)) {
            certificates.push({ host, ...pair });
            break;
          }
        }
      }
    }
    const missing = s.hosts.filter((h) => !certificates.some((c) => c.host === h));
    if (missing.length && !resolver) {
      return { ...taken, refusal: `kamal-proxy has no usable certificate for ${missing.join(", ")} (${s.name}) and this Traefik has no ACME resolver to issue one` };
    }
    const acme = saved.source.kind === "acme" && !!resolver;
    taken.tls.set(s.name, { redirect: saved.redirect, acme, certificates, missing });
    if (certificates.length) {
      const names = certificates.map((c) => c.host).join(", ");
      taken.notes.push(
        acme
          ? `${s.name}: kamal-proxy's Let's Encrypt certificate(s) for ${names} move into Traefik's ACME store (resolver ${resolver}), which renews them from then on`
          : `${s.name}: kamal-proxy's certificate for ${names} moves into Traefik's certificate store, beside the route, until the app's route brings its own`,
      );
    }
    if (missing.length) {
      taken.notes.push(`${s.name}: kamal-proxy has no certificate for ${missing.join(", ")} yet: Traefik's resolver ${resolver} asks ${cfg.tls!.acme!.caServer} for one (until then HTTPS clients of that name get Traefik's default certificate)`);
    }
  }
  return taken;
}

/** A certificate chain whose leaf is valid now and names `host`. */
function usable(chainPem: string, host: string): boolean {
  try {
    const leaf = new X509Certificate(chainPem);
    const now = Date.now();
    return new Date(leaf.validFrom).getTime() <= now && now < new Date(leaf.validTo).getTime() && leaf.checkHost(host) !== undefined;
  } catch {
    return false;
  }
}

/** The Let's Encrypt certificates into Traefik's ACME store, before any Traefik that reads
 * it starts (Traefik reads the store once, when it starts). */
export async function storeAcmeCertificates(conn: SshConnection, cfg: TraefikContainerConfig, dirs: TraefikDirs, taken: KamalProxyTakeover): Promise<void> {
  const certificates = [...taken.tls.values()].filter((t) => t.acme).flatMap((t) => t.certificates);
  const resolver = cfg.tls?.acme?.resolver;
  if (!certificates.length || !resolver) return;
  const store = `${dirs.acme}/acme.json`;
  const now = await conn.run(readFile(store));
  if (now.code !== 0) throw new Error(`reading ${store} failed: ${now.stderr.trim()}`);
  let merged: string;
  try {
    merged = withAcmeCertificates(now.stdout, resolver, certificates);
  } catch (e) {
    throw new Error(`${store} is not Traefik's ACME store (${(e as Error).message}); kamal-proxy was left serving`);
  }
  await conn.upload(store, merged, 0o600);
}

/** kamal-proxy's services as route files (and their own certificates beside them) that
 * Traefik serves exactly as kamal-proxy does; returns their names. */
export async function adoptKamalProxyRoutes(conn: SshConnection, cfg: TraefikContainerConfig, routesDir: string, taken: KamalProxyTakeover): Promise<string[]> {
  const joins = ["bridge", ...cfg.networks];
  const secure = secureEntrypoint(cfg);
  const web = webEntrypoint(cfg.args).name;
  const files: { name: string; content: string; certificates?: string }[] = [];
  for (const s of taken.services) {
    const servers: string[] = [];
    for (const t of s.targets) {
      const colon = t.lastIndexOf(":");
      const [container, port] = colon > 0 ? [t.slice(0, colon), t.slice(colon + 1)] : [t, "80"];
      const nets = (await conn.exec(docker.containerNetworks(container))).stdout.trim().split(/\s+/).filter(Boolean).map((p) => p.split("="));
      const shared = joins.map((n) => nets.find(([net]) => net === n)).find((x) => x && x[1]);
      if (!shared) {
        throw new Error(`kamal-proxy routes ${s.name} to ${t} on network(s) ${nets.map(([n]) => n).join(", ")}, which Traefik does not join (networks: ${joins.join(", ")}); kamal-proxy was left serving`);
      }
      servers.push(`http://${shared[1]}:${port}`);
    }
    let rule = hostRule(s.hosts);
    if (s.paths.length) {
      const prefixes = s.paths.map((p) => `PathPrefix(\`${p}\`)`).join(" || ");
      rule = s.hosts.length ? `(${rule}) && (${prefixes})` : prefixes;
    }
    const tls = taken.tls.get(s.name);
    const https = tls && secure ? { web, secure: secure.name, redirect: tls.redirect, ...(cfg.tls?.acme ? { certResolver: cfg.tls.acme.resolver } : {}) } : undefined;
    // One certificate per distinct chain (the user's own covers every host of the service).
    const own = tls && !tls.acme ? [...new Map(tls.certificates.map((c) => [c.certificatePem, c])).values()] : [];
    files.push({ name: s.name, content: routeConfig({ name: s.name, rule, servers, https }), ...(own.length ? { certificates: tlsConfig(...own) } : {}) });
  }
  for (const f of files) {
    // The certificate first (mode 0600: it holds the key), so the route never loads without it.
    if (f.certificates) await conn.upload(tlsFile(routesDir, f.name), f.certificates, 0o600);
    await conn.exec(docker.writeFileAtomically(routeFile(routesDir, f.name), f.content), { stdin: f.content });
  }
  return files.map((f) => f.name);
}
