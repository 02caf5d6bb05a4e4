/** A version to build. */
export interface BuildRef {
  scriptId: string;
  version: number;
}

/** Starts the build of a version in the background (the buildScript workflow). */
export interface BuildLauncher {
  /** Starting a build that already runs is not an error. */
  launch(ref: BuildRef): Promise<void>;
}
