import { PasswordTokenSchema } from './password-token';
import { RevocationSchema } from './revocation';
import { UserProfileSchema } from './user-profile';

/** Every entity of the user service's database. */
export const entities = [UserProfileSchema, PasswordTokenSchema, RevocationSchema];
