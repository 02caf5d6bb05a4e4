/**
 * Member names and link targets, checked as an extractor would resolve them: nothing may
 * land or point outside the extraction directory.
 */

const maxPathLength = 4096;
const maxSegmentLength = 255;

/** A member name that may not be extracted. */
export class UnsafePathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafePathError';
  }
}

const shown = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

/**
 * The member's path relative to the extraction directory, `./` and repeated slashes
 * removed (`''` for the root itself). Refuses absolute paths, `..` segments, backslashes
 * and control characters.
 */
export function normaliseMemberPath(name: string): string {
  if (name.length > maxPathLength) throw new UnsafePathError(`member name too long: ${shown(name)}`);
  if (name.startsWith('/')) throw new UnsafePathError(`member with an absolute path: ${shown(name)}`);
   
  if (/[\u0000-\u001f\u007f\\]/.test(name)) throw new UnsafePathError(`member name with a control character or backslash: ${shown(name)}`);
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  for (const s of segments) {
    if (s === '..') throw new UnsafePathError(`member path with '..': ${shown(name)}`);
    if (Buffer.byteLength(s) > maxSegmentLength) throw new UnsafePathError(`member name segment too long: ${shown(name)}`);
  }
  return segments.join('/');
}

/**
 * Where a symlink at `memberPath` (normalised) pointing at `target` resolves, relative to
 * the extraction directory. Refuses absolute targets and targets that climb out.
 */
export function resolveSymlinkTarget(memberPath: string, target: string): string {
  if (target === '') throw new UnsafePathError(`symlink ${shown(memberPath)} has no target`);
  if (target.startsWith('/')) throw new UnsafePathError(`symlink ${shown(memberPath)} points outside the archive: ${shown(target)}`);
   
  if (/[\u0000-\u001f\u007f\\]/.test(target)) throw new UnsafePathError(`symlink ${shown(memberPath)} has an invalid target`);
  // What Linux itself refuses to store or follow (PATH_MAX, NAME_MAX).
  if (Buffer.byteLength(target) > maxPathLength) throw new UnsafePathError(`symlink ${shown(memberPath)} has a target longer than ${maxPathLength} bytes`);
  const resolved = memberPath.split('/').slice(0, -1);
  for (const s of target.split('/')) {
    if (Buffer.byteLength(s) > maxSegmentLength) throw new UnsafePathError(`symlink ${shown(memberPath)} has a target segment longer than ${maxSegmentLength} bytes`);
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (resolved.length === 0) throw new UnsafePathError(`symlink ${shown(memberPath)} points outside the archive: ${shown(target)}`);
      resolved.pop();
    } else {
      resolved.push(s);
    }
  }
  return resolved.join('/');
}

/** A hardlink names another member, relative to the archive root. */
export function resolveHardlinkTarget(memberPath: string, target: string): string {
  try {
    const resolved = normaliseMemberPath(target);
    if (resolved === '') throw new UnsafePathError('empty');
    return resolved;
  } catch {
    throw new UnsafePathError(`hardlink ${shown(memberPath)} points outside the archive: ${shown(target)}`);
  }
}
