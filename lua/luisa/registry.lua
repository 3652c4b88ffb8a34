-- luisa.registry: what the script registered, in registration order; luisa
-- adds to it, the plan compiles it. Neither needs the other to load.
return {
  callbacks = {},   -- luisa.every, luisa.assign and luisa.trigger's callbacks
  off = nil,        -- "file:line" where the script called luisa.off()
}
