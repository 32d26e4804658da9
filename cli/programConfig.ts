/** Where `init` puts the program, and the stack config keys it reads (the CLI sets and reads
 * them too). */
export const PROGRAM_DIR = ".kamal/pulumi";
/** The stack config keys the generated program reads (and bootstrap, to reach the hosts). */
export const STACK_CONFIG = {
  version: "version",
  destination: "destination",
  knownHosts: "knownHosts",
  sshKeyPath: "sshKeyPath",
  sshAgent: "sshAgent",
  traefikImage: "traefikImage",
} as const;

/** The deploying machine's SSH key, given in the environment (a CI secret, a teammate's own
 * key): the key's text. Over the stack's settings (sshKeyPath, sshAgent) in the program and
 * in every command that reaches the hosts. */
export const SSH_KEY_ENV = "PULUMI_KAMAL_SSH_KEY";
