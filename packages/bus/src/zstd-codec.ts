// zstd for kafkajs, from Bun's node:zlib (kafkajs ships gzip only; the npm zstd codecs are native addons
// whose install scripts npm 11 skips). Registering it is process-wide; createKafka() does it, so every Indigo
// client (the projector, the API, the example consumer) reads the batches an agent produced with
// --compression zstd. Consumers outside this repo need a zstd codec of their own, which is why the agent's
// default is gzip.
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { CompressionCodecs, CompressionTypes } from "kafkajs";

interface Encoder {
  buffer: Buffer;
}

export const registerZstdCodec = (): void => {
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: async (encoder: Encoder) => zstdCompressSync(encoder.buffer),
    decompress: async (buffer: Buffer) => zstdDecompressSync(buffer),
  });
};
