export { Accessory, type AccessoryArgs, type AccessoryFileArgs } from "./accessory";
export { type EnvArgs, type HostArg, type RegistryArgs, type SshArgs } from "./common";
export { EnvFile, type EnvFileArgs } from "./envFile";
export { Service, type CanaryArgs, type DeployedContainer, type HealthcheckArgs, type MaintenanceArgs, type ProxyRouteArgs, type ReleaseArgs, type RoleArgs, type ServiceArgs } from "./service";
export { Traefik, type TraefikArgs } from "./traefik";
export { Image, type ImageArgs } from "./image";
export { KamalApp, type KamalAppArgs } from "./kamal";
export { loadKamalConfig, normalizeKamalConfig } from "../kamal/config";
export { type KamalConfig } from "../kamal/model";
