import { timestampMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { formatApiMillis } from '@gef/common';

/** A protobuf timestamp as the REST contract writes dates (null when absent). */
export const apiDate = (t: Timestamp | undefined): string | null => (t ? formatApiMillis(timestampMs(t)) : null);
