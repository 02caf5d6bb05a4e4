import type { TarEntryHeader, TarVisitor } from './tar-parser';
import { ArchiveRuleError } from './archive-rule-error';
import { normaliseMemberPath, resolveHardlinkTarget, resolveSymlinkTarget, UnsafePathError } from './member-path';
import { formatBytes, type ArchiveLimits } from './limits';
import { SymlinkTree } from './symlink-tree';

export { ArchiveRuleError };

/** What a member makes once extracted; other types are refused before they are recorded. */
type MemberKind = 'file' | 'hardlink' | 'symlink' | 'directory';

/** The files the platform reads, by their path at the archive root. */
const wanted = { configuration: 'configuration.json', requirements: 'requirements.txt', main: 'src/main.py' } as const;

export interface CheckedMembers {
  members: number;
  /** `configuration.json` bytes; undefined when absent. */
  configuration: Buffer | undefined;
  /** `requirements.txt` bytes; undefined when absent. */
  requirements: Buffer | undefined;
  /** Whether `src/main.py` is a file (or a hardlink to one). */
  hasMainPy: boolean;
  /** Why a wanted path is unusable (e.g. it is a symlink), by path. */
  problems: Map<string, string>;
}

/**
 * Checks every member as it streams past, the way a safe extractor must: no path or link
 * leaves the extraction directory, no devices or FIFOs, nothing is written through a
 * symlink, and at most `maxMembers` members. Keeps the few small files the platform reads.
 */
export class MemberChecker implements TarVisitor {
  private count = 0;
  /** Symlinks by path, with their targets as written. */
  private readonly symlinks = new SymlinkTree();
  /** Every member path, with what it makes: only a directory may appear twice. */
  private readonly seen = new Map<string, MemberKind>();
  private readonly files = new Set<string>();
  private capture: { path: string; parts: Buffer[]; size: number; max: number } | undefined;
  private readonly captured = new Map<string, Buffer>();
  private readonly problems = new Map<string, string>();
  private mainPy = false;

  constructor(private readonly limits: ArchiveLimits) {}

  entry(header: TarEntryHeader): void {
    this.count++;
    if (this.count > this.limits.maxMembers) {
      throw new ArchiveRuleError(`more than ${this.limits.maxMembers} members`);
    }
    let path: string;
    try {
      path = normaliseMemberPath(header.name);
    } catch (err) {
      throw new ArchiveRuleError((err as Error).message);
    }
    const shown = JSON.stringify(header.name);
    switch (header.type) {
      case 'character-device':
      case 'block-device':
        throw new ArchiveRuleError(`device file ${shown}`);
      case 'fifo':
        throw new ArchiveRuleError(`FIFO ${shown}`);
      case 'unsupported':
        throw new ArchiveRuleError(`unsupported member type '${header.typeFlag}' for ${shown}`);
      default:
    }
    if (path === '') {
      if (header.type === 'directory') return;
      throw new ArchiveRuleError(`member ${shown} has no name`);
    }
    // A name ending in '/' (or '/.') is a directory to extractors, whatever its type says:
    // a file so named would be checked here as a file and extracted as a directory.
    const lastSegment = header.name.slice(header.name.lastIndexOf('/') + 1);
    if (header.type !== 'directory' && (lastSegment === '' || lastSegment === '.')) {
      throw new ArchiveRuleError(`member ${shown} is named as a directory but is not one`);
    }
    const link = this.symlinks.symlinkAbove(path);
    if (link !== undefined) throw new ArchiveRuleError(`member ${shown} lies under the symlink ${JSON.stringify(link)}`);
    // Extractors differ on which of two members at one path wins; the check and the
    // extraction must see the same tree.
    const before = this.seen.get(path);
    if (before !== undefined && !(before === 'directory' && header.type === 'directory')) throw new ArchiveRuleError(`member ${shown} appears twice`);
    this.seen.set(path, header.type);

    try {
      switch (header.type) {
        case 'symlink':
          resolveSymlinkTarget(path, header.linkName);
          this.symlinks.add(path, header.linkName);
          this.noteNotRegular(path, 'a symlink');
          return;
        case 'hardlink': {
          const target = resolveHardlinkTarget(path, header.linkName);
          if (!this.files.has(target)) throw new ArchiveRuleError(`hardlink ${shown} does not name an earlier file`);
          this.files.add(path);
          if (path === wanted.main) this.mainPy = true;
          const copy = this.captured.get(target);
          if (copy && (path === wanted.configuration || path === wanted.requirements)) this.captured.set(path, copy);
          else this.noteNotRegular(path, 'a hardlink');
          return;
        }
        case 'directory':
          this.noteNotRegular(path, 'a directory');
          return;
        case 'file':
          this.files.add(path);
          if (path === wanted.main) this.mainPy = true;
          if (path === wanted.configuration) this.startCapture(path, this.limits.maxConfigurationBytes);
          if (path === wanted.requirements) this.startCapture(path, this.limits.maxRequirementsBytes);
          return;
      }
    } catch (err) {
      if (err instanceof UnsafePathError) throw new ArchiveRuleError(err.message);
      throw err;
    }
  }

  data(chunk: Buffer): void {
    const capture = this.capture;
    if (!capture) return;
    capture.size += chunk.length;
    if (capture.size > capture.max) throw new ArchiveRuleError(`${capture.path} is larger than ${formatBytes(capture.max)}`);
    capture.parts.push(Buffer.from(chunk));
  }

  entryEnd(): void {
    if (this.capture) {
      this.captured.set(this.capture.path, Buffer.concat(this.capture.parts));
      this.capture = undefined;
    }
  }

  /**
   * What the archive holds; refuses (ArchiveRuleError) a tree tar cannot extract and a
   * symlink that leads out through others.
   */
  result(): CheckedMembers {
    this.everyParentADirectory();
    this.symlinks.checkAll();
    return {
      members: this.count,
      configuration: this.captured.get(wanted.configuration),
      requirements: this.captured.get(wanted.requirements),
      hasMainPy: this.mainPy,
      problems: this.problems,
    };
  }

  /**
   * Refuses a member under a path that another member makes a file, hardlink or symlink,
   * whichever comes first: tar cannot write `data/inner` once `data` is a file, nor make
   * `data` a file once `data/` holds members, so the build would succeed and every run fail
   * at extraction. With `/` ordered below every other character (NUL: names hold no control
   * characters), the members under a path sort directly after it.
   */
  private everyParentADirectory(): void {
    const members = [...this.seen].map(([path, kind]) => ({ key: path.split('/').join('\u0000'), path, kind }));
    members.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (let i = 0; i + 1 < members.length; i++) {
      const { key, path, kind } = members[i]!;
      const next = members[i + 1]!;
      if (kind !== 'directory' && next.key.startsWith(`${key}\u0000`)) {
        throw new ArchiveRuleError(`member ${JSON.stringify(next.path)} lies under ${JSON.stringify(path)}, which is a ${kind}, not a directory`);
      }
    }
  }

  private startCapture(path: string, max: number): void {
    this.capture = { path, parts: [], size: 0, max };
  }

  private noteNotRegular(path: string, what: string): void {
    if (path === wanted.configuration || path === wanted.requirements || path === wanted.main) {
      this.problems.set(path, `${path} must be a regular file, not ${what}`);
    }
  }
}
