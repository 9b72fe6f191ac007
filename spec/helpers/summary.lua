-- summary.lua: busted output handler = busted's plain terminal output, then
-- one closing line "N passed, N failed, N skipped" (errors count as
-- failures, pending tests as skipped, each listed above with its reason).
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)
  busted.subscribe({'suite', 'end'}, function()
    local failed = handler.failuresCount + handler.errorsCount
    io.write(("\n%d passed, %d failed, %d skipped\n"):format(
      handler.successesCount, failed, handler.pendingsCount))
    io.flush()
    return nil, true
  end)
  return handler
end
