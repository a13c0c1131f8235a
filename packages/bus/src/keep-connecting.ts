// kafkajs gives up on a client whose connect() failed: every later call answers "Broker not connected" until
// connect() is called again, which nothing does. A service started while the broker was down (or still
// loading its coordinators) therefore stayed broken after the broker came back. This calls connect() again,
// with a growing pause, until it succeeds, so a service can start serving first and join Kafka when it can.

export interface KafkaConnection {
  /** Resolves once connect() succeeded; never rejects (a stopped connection stays pending). */
  readonly ready: Promise<void>;
  readonly connected: () => boolean;
  /** What the last failed attempt said, while not connected. */
  readonly lastError: () => string | undefined;
  /** No further attempts (shutdown). */
  readonly stop: () => void;
}

export interface KeepConnectingOptions {
  /** Undoes a failed attempt before the next: a kafkajs client is only reset by disconnect(). */
  readonly reset?: () => Promise<unknown>;
  /** Told of each failed attempt and how long until the next. */
  readonly onFailure?: (error: string, retryInMs: number) => void;
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
}

export function keepConnecting(
  connect: () => Promise<unknown>,
  o: KeepConnectingOptions = {},
): KafkaConnection {
  let connected = false;
  let stopped = false;
  let lastError: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = o.firstDelayMs ?? 500;
  const ready = new Promise<void>((resolve) => {
    const attempt = () => {
      if (stopped) return;
      connect().then(
        () => {
          connected = true;
          lastError = undefined;
          resolve();
        },
        (error: unknown) => {
          if (stopped) return;
          lastError = error instanceof Error ? error.message : String(error);
          o.onFailure?.(lastError, delay);
          timer = setTimeout(() => {
            void (o.reset?.() ?? Promise.resolve()).catch(() => {}).then(attempt);
          }, delay);
          delay = Math.min(delay * 2, o.maxDelayMs ?? 5_000);
        },
      );
    };
    attempt();
  });
  return {
    ready,
    connected: () => connected,
    lastError: () => lastError,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
