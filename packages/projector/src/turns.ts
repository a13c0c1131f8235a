// A batch's long loops (decoding, folding, building COPY rows: a 4 MB fetch's take 100-300 ms each) give the
// event loop a turn every few milliseconds. The batches applying at once share one thread, and the one
// holding the dye lock — which every dye transaction waits for in turn — only issues short statements
// between awaits: each of its awaits waited behind another batch's whole loop, so the lock was held for as
// long as the longest loops running beside it.
const SLICE_MS = 4;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** `each` over `items`, in order, yielding a turn whenever a slice of SLICE_MS has passed. */
export async function sliced<T>(
  items: readonly T[],
  each: (item: T, index: number) => void,
  checkEvery = 1,
): Promise<void> {
  let sliceStart = performance.now();
  for (let i = 0; i < items.length; i++) {
    each(items[i]!, i);
    if (i % checkEvery === checkEvery - 1 && performance.now() - sliceStart > SLICE_MS) {
      await nextTurn();
      sliceStart = performance.now();
    }
  }
}
