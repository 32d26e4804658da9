/** Every resource kind's schema, by the kind name the provider uses. */
import { accessoryContainer, appContainer, envFile, hook, release, traefikContainer } from "./schemas";
import { imageBuild } from "./image";

export const schemas = {
  app: appContainer,
  traefik: traefikContainer,
  envFile,
  accessory: accessoryContainer,
  release,
  hook,
  image: imageBuild,
} as const;
