/** Whether a run's owner wants the e-mail about its end (their profile's opt-in). */
export interface OwnerNotices {
  /**
   * True when the owner opted in, or when it cannot be told (the run's workflow then asks
   * the user service at the end, which checks again before sending). False lets the
   * workflow skip the e-mail step altogether.
   */
  wantsMail(userId: string): Promise<boolean>;
}
