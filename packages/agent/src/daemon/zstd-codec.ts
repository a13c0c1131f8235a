// zstd for kafkajs, from Bun's node:zlib (kafkajs ships gzip only; the npm zstd codecs are native addons
// whose install scripts npm 11 skips). Registering it is process-wide: every kafkajs client in the process
// can then produce and read zstd batches. Consumers of a zstd-compressed topic need a zstd codec too, which
// is why the daemon's default is gzip.
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
