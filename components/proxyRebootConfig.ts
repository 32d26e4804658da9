/**
 * The operator's proxy reboot (`pulumi-kamal proxy reboot`) as the stack config holds it: read
 * by the Traefik component, written by the CLI. No Pulumi SDK here: the CLI loads it first.
 */
/** The stack config key: a JSON object of host names, each the time its Traefik was last
 * asked to reboot. */
export const PROXY_REBOOT_CONFIG = "pulumi-kamal:proxyReboot";

/** Parses the key's value: reboot times by host name. */
export function parseProxyReboots(text: string | undefined): Record<string, string> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`stack config ${PROXY_REBOOT_CONFIG}: is not JSON (pulumi-kamal proxy reboot writes it)`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v) || Object.values(v).some((t) => typeof t !== "string")) {
    throw new Error(`stack config ${PROXY_REBOOT_CONFIG}: must be an object of host names and times, e.g. {"web-1":"2026-12-05T20:50:00.000Z"}`);
  }
  return v as Record<string, string>;
}
