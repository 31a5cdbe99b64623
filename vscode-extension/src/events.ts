// Suggestion events for the server: "view" when an answer's suggestion is first shown, "select" when one is
// accepted. The server counts them by type and by the model that answered (autocomplete_client_events_total in
// /metrics), so a team sees how often its suggestions are taken (select / view), per model and over time, as
// Tabby's agent reports them to the same route (POST /v1/events, Tabby's shape: {type, completion_id,
// choice_index}; serving/tabby.py).
//
// An answer counts one view however often it is shown again: VS Code asks at every keystroke, and a suggestion
// the user types into comes back from the cache under its answer's id. Only the event's type, the answer's id and
// the choice's index are sent: no text. A server that has no such route (404, one from before it) is not asked
// again this session; any other failure loses the event and nothing else. Pure: no `vscode` import.

export type SuggestionEventType = 'view' | 'select';

export interface SuggestionEvent {
  type: SuggestionEventType;
  completion_id: string;
  choice_index: number;
}

/** Sends one event; resolves to the HTTP status (0: not sent, e.g. unreachable). Never rejects. */
export type PostEvent = (event: SuggestionEvent) => Promise<number>;

export class SuggestionEvents {
  private readonly viewed = new Set<string>();
  private unsupported = false;

  /**
   * @param post      sends an event (the client's postEvent)
   * @param enabled   read at each event (the reportEvents setting)
   * @param capacity  answer ids remembered as viewed (the oldest are forgotten first)
   */
  constructor(private readonly post: PostEvent, private readonly enabled: () => boolean = () => true,
    readonly capacity = 512) {}

  /** A suggestion of answer `id` is on screen. */
  shown(id: string | undefined, index: number | undefined): void {
    if (!id || index === undefined || this.viewed.has(id)) return;
    this.viewed.add(id);
    if (this.viewed.size > this.capacity) this.viewed.delete(this.viewed.values().next().value as string);
    this.send('view', id, index);
  }

  /** The user accepted choice `index` of answer `id`. */
  accepted(id: string | undefined, index: number | undefined): void {
    if (!id || index === undefined) return;
    this.send('select', id, index);
  }

  private send(type: SuggestionEventType, id: string, index: number): void {
    if (this.unsupported || !this.enabled()) return;
    void this.post({ type, completion_id: id, choice_index: index }).then((status) => {
      if (status === 404) this.unsupported = true;
    });
  }
}
