"The lowest layer: schedules, the blur kernel, setting a training size, argument checks"
