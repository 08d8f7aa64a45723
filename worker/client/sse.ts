// Server-Sent Events frames from a fetch body: only ReadableStream and TextDecoder, so it runs
// in browsers, Workers and Node alike. Comments and the `retry:` field are skipped; a frame
// without data (the opening comment) yields nothing. The client's watch reads streams with it,
// and so do the tests that read /watch raw.

export interface SseFrame {
  event: string;
  id: string | null;
  data: string;
}

/** Splits a text/event-stream body into frames as they arrive; `signal` cancels the body (the
 *  iterator then ends, even while it waits for the next chunk). */
export async function* sseFrames(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseFrame> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  if (signal?.aborted) cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
        const block = text.slice(0, cut);
        text = text.slice(cut + 2);
        let event = 'message';
        let id: string | null = null;
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'event') event = value;
          else if (field === 'id') id = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length > 0) yield { event, id, data: data.join('\n') };
      }
    }
  } finally {
    signal?.removeEventListener('abort', cancel);
    cancel();
  }
}
