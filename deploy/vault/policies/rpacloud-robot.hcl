# Robots need no Vault token and no policy: every credential reaches them
# as a single-use wrapping token, made by the daemon for one attempt, which
# carries Vault's built-in response-wrapping policy and unwraps exactly one
# credential. This policy exists for sites whose robots must authenticate
# to reach Vault at all (for example through a Vault Agent on the robot's
# VM): it allows unwrapping and inspecting wrapping tokens, and nothing
# else, so a robot can never read a credential it was not granted.

path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
