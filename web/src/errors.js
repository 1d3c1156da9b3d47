// Every error the server can return, as a sentence a person can act on.
// REST errors are mapped by HTTP status and by what the user was doing (the "context");
// Socket.IO errors by their error code.

const SOCKET_CODES = {
  bad_request: 'The server could not accept that request. Check what you typed and try again.',
  forbidden: 'You are not allowed to do that.',
  not_member: 'You are not a member of this room any more.',
  not_found: 'This room does not exist (any more).',
  too_large: 'That message is too long: the limit is 4,000 characters.',
  rate_limited: 'You are sending messages too fast. Wait a moment, then retry.',
  unavailable: 'The server is busy or restarting. Try again in a moment.',
  unauthorized: 'Your session has expired. Please log in again.',
  timeout: 'The server did not answer in time. Check your connection, then retry.',
  disconnected: 'The connection was lost before the server answered.',
  muted: 'You are muted in this room: you can read, but not post, until the mute ends.',
  archived: 'This room is archived: it is read-only.',
  banned: 'You are banned from this room.',
  gone: 'That join code is gone: it was replaced, revoked, has expired or has been used up.',
  conflict: 'That conflicts with the room as it is now. Reload and try again.',
  offline: 'You are offline. Try again once the connection is back.',
}

// Sentences for a code in the context of sending a message, where a more precise wording helps.
const SEND_CODES = {
  bad_request: 'This message was refused: it must be 1 to 4,000 characters.',
  not_member: 'You cannot post here: you are not a member of this room.',
  not_found: 'You cannot post here: this room does not exist.',
  muted: 'You cannot post here: you are muted in this room. You can still read it.',
  archived: 'You cannot post here: this room is archived, so it is read-only.',
}

// Sending in a direct conversation: the only refusal `forbidden` there is the other's block.
const DIRECT_CODES = {
  forbidden: 'You cannot message this person: they have blocked you.',
}

// A message that changes: replying, editing, deleting, reacting.
const GONE = 'That message does not exist (any more).'
const MESSAGE_CODES = {
  reply: {
    bad_request: 'This reply was refused: the message it answers is not in this room. Cancel the reply and send it again.',
  },
  edit: {
    bad_request: 'The new text was refused: a message is 1 to 4,000 characters.',
    forbidden: 'Only its author can edit a message.',
    not_found: GONE,
    conflict: 'This message was deleted, so it cannot be edited any more.',
    muted: 'You are muted in this room: you cannot edit messages until the mute ends.',
    archived: 'This room is archived: its messages can no longer be edited.',
  },
  delete: {
    forbidden: 'You cannot delete this message: everyone deletes their own, admins delete members’ messages and the owner anyone’s.',
    not_found: GONE,
    archived: 'This room is archived: its messages can no longer be deleted.',
  },
  react: {
    bad_request: 'That reaction was refused: a reaction is 1 to 32 characters without spaces.',
    forbidden: 'You are not allowed to react in this room.',
    not_found: GONE,
    conflict: 'This message already has 20 different reactions: add one of those instead.',
    muted: 'You are muted in this room: you cannot react until the mute ends.',
    archived: 'This room is archived: nobody can react any more.',
  },
}

export function socketErrorText(error, context) {
  const code = (error && (error.code || error.message)) || 'unknown'
  if (context === 'direct' && DIRECT_CODES[code]) return DIRECT_CODES[code]
  if ((context === 'send' || context === 'direct') && SEND_CODES[code]) return SEND_CODES[code]
  const byContext = MESSAGE_CODES[context]
  if (byContext && byContext[code]) return byContext[code]
  if (context === 'reply' && SEND_CODES[code]) return SEND_CODES[code]
  if (SOCKET_CODES[code]) return SOCKET_CODES[code]
  const detail = error && error.message && error.message !== code ? ` (${error.message})` : ''
  return `Something went wrong${detail}. Please try again.`
}

// context: 'login' | 'register' | 'session' | 'rooms' | 'create' | 'join' | 'history' | 'logout'
//   | 'profile' | 'password' | 'export' | 'delete-account' | 'settings' | 'leave' | 'members'
//   | 'moderate' | 'invites' | 'dm' | 'blocks' | 'block'
const HTTP_BY_CONTEXT = {
  login: {
    400: 'Enter a username and a password of 8 to 128 characters.',
    401: 'Wrong username or password.',
    404: 'Wrong username or password.',
    429: 'Too many failed logins for this username. Wait 15 minutes, or use the right password.',
  },
  register: {
    400: 'Choose a username of 1 to 64 characters and a password of 8 to 128 characters.',
    409: 'That username is already taken (names ignore upper and lower case). Pick another one.',
    429: 'Too many sign-ups right now. Wait a moment and try again.',
  },
  create: {
    400: 'Check the room: a name of 1 to 64 characters, a description of at most 256, and a PNG, JPEG, GIF or WebP picture.',
    409: 'A room like this already exists.',
    413: 'That picture is too large: the limit is 1 MiB.',
  },
  join: {
    400: 'That is not a valid join code. A join code has 32 letters and digits (0-9, a-f).',
    404: 'No room has this join code. Check it with the person who gave it to you.',
    403: 'You are not allowed to join this room.',
  },
  profile: {
    400: 'Check your profile: a name of 1 to 64 characters without control characters, and a PNG, JPEG, GIF or WebP picture.',
    409: 'That name is already taken (names ignore upper and lower case). Pick another one.',
    413: 'That picture is too large: the limit is 1 MiB.',
  },
  password: {
    400: 'Choose a new password of 8 to 128 characters.',
    403: 'Your current password is wrong, so it was not changed.',
    429: 'Too many attempts. Wait a moment and try again.',
  },
  export: {
    404: 'Your data could not be found on the server.',
  },
  'delete-account': {
    400: 'Enter your password to delete your account.',
    403: 'That password is wrong. Your account was not deleted.',
    429: 'Too many attempts. Wait a moment and try again.',
  },
  settings: {
    400: 'Check the room: a name of 1 to 64 characters, a description of at most 256, a PNG, JPEG, GIF or WebP picture, and messages kept 1 to 36,500 days (or forever).',
    403: 'You are not allowed to change that: admins change the name, description and picture; only the owner archives the room or sets how long messages are kept.',
    404: 'This room does not exist (any more).',
    413: 'That picture is too large: the limit is 1 MiB.',
  },
  leave: {
    403: 'You are not a member of this room any more.',
    404: 'This room does not exist (any more).',
    409: 'You own this room: make another member the owner (Members, then their actions) before you leave.',
  },
  members: {
    403: 'You are not a member of this room any more, so you cannot see its members.',
    404: 'This room does not exist (any more).',
  },
  moderate: {
    400: 'The server refused that: a reason has at most 500 characters, a duration is 1 second to 1 year.',
    403: 'You are not allowed to do that: admins act on members only, and nobody acts on the owner.',
    404: 'That person is not a member of this room any more.',
    409: 'That conflicts with the room as it is now. Reload the members and try again.',
  },
  invites: {
    400: 'The server refused that invite: the number of uses and the lifetime must be whole numbers above zero.',
    403: 'Only the room’s admins and its owner manage invites.',
    404: 'That invite (or this room) does not exist any more.',
  },
  dm: {
    400: 'You cannot start a conversation with yourself: enter another person’s username.',
    403: 'You cannot start a conversation with this person: they have blocked you.',
    404: 'Nobody has that username. Check the spelling (upper and lower case do not matter).',
  },
  blocks: {
    404: 'Your list of blocked people could not be found on the server.',
  },
  block: {
    400: 'You cannot block yourself.',
    404: 'That person does not exist (any more).',
  },
  history: {
    400: 'The message history could not be loaded (bad request).',
    403: 'You are not a member of this room, so you cannot read its messages.',
    404: 'This room does not exist (any more).',
  },
}

// Part 2 errors carry a code: where one says more than the status, it wins.
const HTTP_CODES = {
  gone: 'That join code is gone: it was replaced, revoked, has expired or has been used up. Ask a member of the room for a new one.',
  banned: 'You are banned from this room, so you cannot join it.',
  archived: 'This room is archived: it is read-only, and nobody can join it until its owner unarchives it.',
  muted: 'You are muted in this room: you can read, but not post, until the mute ends.',
}

const HTTP_GENERIC = {
  400: 'The server could not accept that request. Check what you entered.',
  401: 'Your session has expired. Please log in again.',
  403: 'You are not allowed to do that.',
  404: 'That could not be found.',
  409: 'That conflicts with something that already exists.',
  413: 'That is too large for the server.',
  429: 'Too many requests. Wait a moment and try again.',
}

export function httpErrorText(status, serverMessage, context, code = '') {
  if (status === 0) return 'Cannot reach the server. Check your connection and try again.'
  if (HTTP_CODES[code]) return HTTP_CODES[code]
  if (status === 410) return HTTP_CODES.gone // the only refusal answered 410, code or not
  const byContext = HTTP_BY_CONTEXT[context] || {}
  let text = byContext[status] || HTTP_GENERIC[status]
  if (!text) {
    if (status >= 500) text = 'The server had a problem. Try again in a moment.'
    else text = 'Something went wrong. Please try again.'
  }
  // A 400's own message says exactly what was wrong: show it after our sentence.
  if (status === 400 && serverMessage && !text.includes(serverMessage)) {
    text += ` (${serverMessage})`
  }
  return text
}
