import { ArchiveRuleError } from './archive-rule-error';

interface Node {
  children: Map<string, Node>;
  /** Set when this path is a symlink: its target as written. */
  target?: string;
}

/**
 * Linux follows at most 40 symlinks while resolving one path; so does this check, refusing
 * the archive.
 */
const maxHops = 40;

/**
 * The symlinks of an archive as a tree of path segments, so that asking whether a path
 * passes through one costs a map look-up per segment, however long the path. The segments
 * looked up for one archive are counted: past `maxSteps` the archive is refused, so that no
 * crafted set of deep paths and long link targets can hold the service's thread for long
 * (an archive of real scripts takes a few thousand).
 */
export class SymlinkTree {
  private readonly root: Node = { children: new Map() };
  private readonly added: { path: string; target: string }[] = [];
  private steps = 0;

  constructor(private readonly maxSteps = 1_000_000) {}

  /** Records the symlink at `path` (normalised: segments joined by `/`). */
  add(path: string, target: string): void {
    let node = this.root;
    for (const segment of path.split('/')) {
      this.step();
      let child = node.children.get(segment);
      if (!child) {
        child = { children: new Map() };
        node.children.set(segment, child);
      }
      node = child;
    }
    node.target = target;
    this.added.push({ path, target });
  }

  /** The nearest-to-the-root symlink among the ancestors of `path` (normalised), if any. */
  symlinkAbove(path: string): string | undefined {
    const segments = path.split('/');
    let node: Node | undefined = this.root;
    for (let i = 0; i < segments.length - 1; i++) {
      this.step();
      node = node.children.get(segments[i]!);
      if (!node) return undefined;
      if (node.target !== undefined) return segments.slice(0, i + 1).join('/');
    }
    return undefined;
  }

  /**
   * Resolves every symlink as the file system will once every member is extracted, through
   * the other symlinks whatever their order in the archive; refuses the archive when one
   * leads outside or loops.
   */
  checkAll(): void {
    for (const { path, target } of this.added) this.followOut(path, target);
  }

  private followOut(link: string, target: string): void {
    const outside = () => new ArchiveRuleError(`symlink ${JSON.stringify(link)} points outside the archive through other symlinks`);
    const linkSegments = link.split('/');
    // The resolved path so far, one entry per segment: the tree's node for it, or null once
    // it has left every symlink's path (nothing below can be a symlink then).
    const resolved: (Node | null)[] = [];
    let node: Node | null = this.root;
    for (const segment of linkSegments.slice(0, -1)) {
      this.step();
      node = node?.children.get(segment) ?? null;
      resolved.push(node);
    }
    let pending = target.split('/');
    let hops = 0;
    for (let i = 0; i < pending.length; i++) {
      this.step();
      const segment = pending[i]!;
      if (segment === '' || segment === '.') continue;
      if (segment === '..') {
        if (resolved.length === 0) throw outside();
        resolved.pop();
        continue;
      }
      const parent = resolved.length === 0 ? this.root : (resolved[resolved.length - 1] ?? null);
      const next = parent?.children.get(segment) ?? null;
      if (next?.target === undefined) {
        resolved.push(next);
        continue;
      }
      if (++hops > maxHops) throw new ArchiveRuleError(`symlink ${JSON.stringify(link)} is part of a loop`);
      // The link is followed from the directory it sits in: the walk goes on through its target.
      pending = [...next.target.split('/'), ...pending.slice(i + 1)];
      i = -1;
    }
  }

  private step(): void {
    if (++this.steps > this.maxSteps) {
      throw new ArchiveRuleError('the archive\'s symlinks are too many or too deep to check');
    }
  }
}
