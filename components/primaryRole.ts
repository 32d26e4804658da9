/** Kamal's primary role when none is named: "web" when there is one, else the first. (Its own
 * module: the CLI reads it without loading the components.) */
export function defaultPrimary(roles: readonly string[]): string {
  return roles.includes("web") ? "web" : roles[0];
}
