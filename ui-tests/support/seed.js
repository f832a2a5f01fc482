// The catalog and applications most tests start from, made through the public API.

export const USER_CREATED_EXAMPLE = { id: "user_1", email: "ada@example.com", plan: "pro" };

export async function seedCatalog(herald) {
  const types = [
    {
      name: "user.created",
      description: "A user signed up",
      schemas: {
        1: {
          type: "object",
          required: ["id", "email"],
          properties: {
            id: { type: "string", description: "The user's id" },
            email: { type: "string", description: "Where to reach them" },
            plan: { type: "string", description: "Their plan" },
          },
          examples: [USER_CREATED_EXAMPLE],
        },
      },
    },
    { name: "user.deleted", description: "A user left" },
    { name: "order.paid", description: "An order was paid" },
    { name: "order.legacy", description: "The old order event", deprecated: true },
    { name: "beta.preview", description: "Only for beta customers", featureFlags: ["beta"] },
  ];
  for (const t of types) {
    const answer = await herald.api("POST", "/event-type", t);
    if (answer.status !== 201 && answer.status !== 409) throw new Error(JSON.stringify(answer));
  }
}

let counter = 0;

/** A new application with `endpoints` (URLs) and a portal URL for it. */
export async function seedApp(herald, { name, endpoints = [], access = {} } = {}) {
  counter += 1;
  const app = await herald.ok("POST", "/app", { name: name || `Customer ${counter}` });
  const created = [];
  for (const endpoint of endpoints) {
    created.push(await herald.ok("POST", `/app/${app.id}/endpoint`, typeof endpoint === "string" ? { url: endpoint } : endpoint));
  }
  const portal = await herald.ok("POST", `/auth/app-portal-access/${app.id}`, access);
  return { app, endpoints: created, portal };
}

/** Publishes; a user.created payload is completed from the example so it fits the schema. */
export async function publish(herald, appId, eventType, payload = { n: 1 }, extra = {}) {
  const body = eventType === "user.created" ? { ...USER_CREATED_EXAMPLE, ...payload } : payload;
  return herald.ok("POST", `/app/${appId}/msg`, { eventType, payload: body, ...extra });
}
