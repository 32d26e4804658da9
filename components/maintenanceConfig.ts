/**
 * The operator's maintenance switch (`pulumi-kamal maintenance` / `live`) as the stack config
 * holds it: read by the Service in the program and written by the CLI. No Pulumi SDK here: the
 * CLI loads it before any update.
 */
/** The stack config key `pulumi-kamal maintenance` and `live` set: a JSON object of services
 * in maintenance, each `{ "message"?: string }`. In the config (not only on the hosts), so
 * every later `pulumi up`, from any machine, keeps the service where the operator put it. */
export const MAINTENANCE_CONFIG = "pulumi-kamal:maintenance";

/** Parses the key's value: services in maintenance, by name. */
export function parseOperatorMaintenance(text: string | undefined): Record<string, { message?: string }> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`stack config ${MAINTENANCE_CONFIG}: is not JSON (pulumi-kamal maintenance writes it; \`pulumi-kamal live\` or \`pulumi config rm ${MAINTENANCE_CONFIG}\` clears it)`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v) || Object.values(v).some((m) => !m || typeof m !== "object" || ("message" in m && typeof (m as { message: unknown }).message !== "string"))) {
    throw new Error(`stack config ${MAINTENANCE_CONFIG}: must be an object of services, e.g. {"shop":{"message":"Back at 10:00"}}`);
  }
  return v as Record<string, { message?: string }>;
}

