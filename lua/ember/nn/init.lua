--- ember.nn: layers, losses, initialisation and functional forms.
local nn = {}
return nn
