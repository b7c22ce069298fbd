import { Type } from '@sinclair/typebox'
import { Email, Name, Password, Role } from '../../schemas/shared.js'

export const CreateUserBody = Type.Object({
  email: Email,
  name: Name,
  password: Password,
  role: Type.Optional(Role),
}, { additionalProperties: false, examples: [{ email: 'grace@example.com', name: 'Grace Hopper', password: 'correct horse battery', role: 'admin' }] })

export const UpdateUserBody = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Email),
  role: Type.Optional(Role),
}, {
  additionalProperties: false,
  minProperties: 1,
  description: 'Changing your own email needs a fresh token. Only an admin may change a role; that revokes the user\'s tokens.',
  examples: [{ name: 'Ada King' }],
})

export const ChangePasswordBody = Type.Object({
  current_password: Type.Optional(Type.String({ maxLength: 128, description: 'Required when changing your own password' })),
  new_password: Password,
}, { additionalProperties: false, examples: [{ current_password: 'correct horse battery', new_password: 'battery staple horse correct' }] })
