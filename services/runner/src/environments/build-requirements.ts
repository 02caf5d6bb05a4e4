import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import { script } from '@gef/protos';

/** A version being built, as the runner names it to the script service. */
export interface BuildRequirementsRef {
  scriptId: string;
  version: number;
  buildToken: string;
}

/**
 * The requirements.txt of a version being built, exactly as the script service stored it;
 * `signal`: the call is abandoned when it aborts. Throws BuildRequirementsRefused when
 * asking again cannot help; anything else may pass on a retry.
 */
export type BuildRequirements = (ref: BuildRequirementsRef, signal?: AbortSignal) => Promise<string>;

/**
 * The script service would not give a build's requirements, for good: the script or
 * version is gone (`gone`), the build has ended, or its build token is refused (expired,
 * say, when the build waited longer than the token lasts for a runner).
 */
export class BuildRequirementsRefused extends Error {
  override readonly name = 'BuildRequirementsRefused';

  constructor(
    message: string,
    readonly gone: boolean,
  ) {
    super(message);
  }
}

/**
 * Requirements from the script service's GetBuildRequirements, with the version's build
 * token: they may hold a package index's credentials, so they reach the runner over this
 * call rather than in the build's activity input.
 */
export function scriptServiceRequirements(client: Client<typeof script.ScriptService>): BuildRequirements {
  return async (ref, signal) => {
    try {
      const res = await client.getBuildRequirements(create(script.GetBuildRequirementsRequestSchema, ref), signal ? { signal } : {});
      return res.requirements;
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === Code.NotFound) throw new BuildRequirementsRefused('the script was deleted during its build', true);
      if (e.code === Code.FailedPrecondition) throw new BuildRequirementsRefused(`the build has ended: ${e.rawMessage}`, false);
      if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
        throw new BuildRequirementsRefused(`the script service refused the build's token: ${e.rawMessage}`, false);
      }
      throw err;
    }
  };
}
