import type { Store, ObjectWriter, WriteOptions } from './store.js';
import type { Throttle } from './network.js';

/**
 * `destination` with every byte it writes (writer, put) and reads (get) taken from `throttle`: one place
 * for S3 and local folders alike, uploads and downloads alike.
 */
export function throttledStore<D extends Store>(destination: D, throttle: Throttle): D {
  const limitedWriter = (writer: ObjectWriter, options: WriteOptions): ObjectWriter => {
    const limited: ObjectWriter = {
      write: async (chunk) => {
        await throttle.take(chunk.length, options.signal);
        return writer.write(chunk);
      },
      finish: () => writer.finish(),
      abort: () => writer.abort(),
    };
    if (writer.writeAt) {
      const writeAt = writer.writeAt.bind(writer);
      limited.writeAt = async (chunk, position) => {
        await throttle.take(chunk.length, options.signal);
        return writeAt(chunk, position);
      };
    }
    return limited;
  };
  return new Proxy(destination, {
    get(target, property, receiver) {
      switch (property) {
        case 'writer':
          return async (key: string, options: WriteOptions = {}) => limitedWriter(await target.writer(key, options), options);
        case 'put':
          return async (key: string, body: Buffer | string, options: WriteOptions = {}) => {
            await throttle.take(typeof body === 'string' ? Buffer.byteLength(body) : body.length, options.signal);
            return target.put(key, body, options);
          };
        case 'get':
          return async (...args: Parameters<Store['get']>) => throttle.readable(await target.get(...args));
        default: {
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
      }
    },
  });
}
