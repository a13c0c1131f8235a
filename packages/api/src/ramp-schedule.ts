// When a running release's next ramp step is due: its last start, resume or step (updatedAt, which nothing
// else moves while it runs) plus the current step's pause. The analysis advances it at that time, or holds it
// (ramp_holds says why); an operator watching a ramp that does not move needs the due time to tell a hold
// from a step still to come.

export interface RampPosition {
  readonly state: string;
  readonly ramp: readonly { readonly percent: number; readonly pauseSeconds: number }[];
  readonly rampStep: number;
  readonly updatedAt: Date;
}

/** null when the release is not running or is at its last step (or has no ramp). */
export function rampNextStepAt(r: RampPosition): Date | null {
  const step = r.ramp[r.rampStep];
  if (r.state !== "running" || !step || r.ramp[r.rampStep + 1] === undefined) return null;
  return new Date(r.updatedAt.getTime() + step.pauseSeconds * 1000);
}
