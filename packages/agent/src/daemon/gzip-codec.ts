// kafkajs's gzip codec at zlib level 1 instead of the default 6, for the agent's producer: on DyeEventBatch
// messages it costs about a third of the CPU per event (measured here: 0.21 vs 0.72 µs) for a ratio of
// 0.28 instead of 0.15. Any gzip reader decodes it, so consumers need nothing. Registering it is
// process-wide (every kafkajs client of the process then compresses gzip at level 1).
import { promisify } from "node:util";
import { gzip, unzip } from "node:zlib";
import { CompressionCodecs, CompressionTypes } from "kafkajs";

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);

export const registerFastGzipCodec = (): void => {
  CompressionCodecs[CompressionTypes.GZIP] = () => ({
    compress: (encoder: { buffer: Buffer }) => gzipAsync(encoder.buffer, { level: 1 }),
    decompress: (buffer: Buffer) => unzipAsync(buffer),
  });
};
