/** What the command builders' tests build from: one web role of a service. */
import { appContainer } from "../../../provider/config/schemas";

export const connection = { host: "10.0.0.1" };

export const web = appContainer.parse({
  hostName: "web-1",
  connection,
  service: "hey",
  role: "web",
  image: "registry.example.com/hey",
  version: "abc123",
  env: { RAILS_ENV: "production", WEB_CONCURRENCY: "2" },
  labels: { team: "core" },
  volumes: ["/data/storage:/rails/storage"],
  options: { memory: "1g", "add-host": ["db:10.0.0.3"], init: true },
  traefik: true,
  appPort: 3000,
  healthcheck: { path: "/up", port: 3000 },
  stopWaitTime: "20s",
});
