import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { user } from '@gef/protos';
import type { UserProfile } from '../entities/user-profile';
import type { RoleName } from '../domain/roles';

const roleToProto: Record<RoleName, user.Role> = {
  USER: user.Role.USER,
  ADMIN: user.Role.ADMIN,
  SUPERADMIN: user.Role.SUPERADMIN,
};

/** A profile and its role as the public User message. */
export function toUserMessage(profile: UserProfile, role: RoleName): user.User {
  return create(user.UserSchema, {
    id: profile.id,
    email: profile.email,
    name: profile.name,
    country: profile.country,
    institution: profile.institution,
    role: roleToProto[role],
    createdAt: timestampFromDate(profile.createdAt),
    updatedAt: timestampFromDate(profile.updatedAt),
  });
}
