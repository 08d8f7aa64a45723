// The edge baseline: a Worker in front of ONE Durable Object that stores each PUT with a plain
// storage.put — the cheapest durable write the platform offers, with the same Worker → object
// hop as metcd's path. The edge phase compares metcd's replicated write against this.
// (Structural types only, so the root tsconfig checks it without the Workers type package.)

interface PlainStorage {
  put(key: string, value: string): Promise<void>;
}

interface PlainState {
  storage: PlainStorage;
}

interface PlainStub {
  fetch(request: Request): Promise<Response>;
}

interface PlainEnv {
  PLAIN: { idFromName(name: string): unknown; get(id: unknown): PlainStub };
}

export class PlainObject {
  private readonly state: PlainState;

  constructor(state: PlainState) {
    this.state = state;
  }

  async fetch(request: Request): Promise<Response> {
    if (request.method !== 'PUT') return new Response('PUT only', { status: 405 });
    const key = new URL(request.url).pathname.slice(1);
    await this.state.storage.put(key, await request.text());
    return new Response(null, { status: 204 });
  }
}

export default {
  fetch(request: Request, env: PlainEnv): Promise<Response> {
    return env.PLAIN.get(env.PLAIN.idFromName('plain')).fetch(request);
  },
};
