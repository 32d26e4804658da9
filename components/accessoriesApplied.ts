/**
 * Which accessories an update of a KamalApp may change. Kamal's deploy leaves running
 * accessories as they are (only `kamal accessory boot|reboot` changes one); KamalApp does
 * the same unless its `accessories` argument, or the environment variable the CLI's
 * `pulumi-kamal accessory boot|reboot` sets, names them. No Pulumi import: the CLI reads it.
 */

/** The environment variable `pulumi-kamal accessory boot|reboot` names the accessories in
 * ("apply", or names separated by commas). */
export const ACCESSORIES_ENV = "PULUMI_KAMAL_ACCESSORIES";

/** "keep" (none), "apply" (every one) or some names. */
export type AccessoriesApplied = "keep" | "apply" | string[];

/** Which accessories an update applies changes to: the argument, else the environment's. */
export function accessoriesApplied(arg: AccessoriesApplied | undefined, env = process.env): "apply" | string[] {
  const given = arg ?? env[ACCESSORIES_ENV]?.trim();
  if (!given || given === "keep") return [];
  if (given === "apply" || given === "all") return "apply";
  return Array.isArray(given) ? given : given.split(",").map((n) => n.trim()).filter(Boolean);
}
