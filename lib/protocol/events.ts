/** What the station reports while it works, in the patent's terms (S1..S7 scheme A, S11..S17 scheme B). */
export interface StationEvent {
  step: string;
  message: string;
  bytes?: number;
  total?: number;
}

export type EventSink = (e: StationEvent) => void;
